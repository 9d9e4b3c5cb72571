"""Item 9: a backward that trains nothing, code that only infers or exports, and sizes fixed by
the checkpoint a script loads are not findings; the training loop beside them still is."""

from __future__ import annotations

from realcase import check, check_project


def test_the_training_loop_is_reported_beside_a_profiler_and_a_delegating_backward():
    """ultralytics/yolov5@5081342f04fb287fc2e5f2b5a4e06752b7937b1c, utils/torch_utils.py
    (``profile()`` times ``forward`` and ``backward`` of half-precision modules and applies no
    update) and awslabs/sockeye@871d9863d6a657d87de1c90f44977c5b70c99c7e, sockeye/training.py
    (a model wrapper whose ``backward`` delegates to the loss it is given)."""
    check(
        """
        import time
        import torch
        from torch import nn

        def profile(m, x, n=10):
            m = m.half()
            for _ in range(n):
                t0 = time.time()
                y = m(x.half())
                y.sum().backward()
                print(time.time() - t0)

        class ModelWrapper:
            def backward(self, loss):
                loss.backward()

        def train(loader):
            model = nn.Linear(1024, 1024).cuda().half()
            for x, y in loader:
                loss = criterion(model(x.half()).float(), y)
                loss.backward()  # AMP301
                optimizer.step()
        """
    )


def test_trap_a_float32_head_on_features_computed_without_gradients():
    """facebookresearch/fairseq@3d262bb25690e4eb2e7d3c1309b1e9c406ca4b99,
    examples/MMPT (features extracted in float16 under ``no_grad``, a head trained on them in
    float32): autocast elsewhere in the function does not make the head's backward float16."""
    check(
        """
        import torch
        def train_head(backbone, head, loader):
            for x, y in loader:
                with torch.no_grad(), torch.autocast('cuda', dtype=torch.float16):
                    feats = backbone(x)
                with torch.autocast('cuda', dtype=torch.float16):
                    preview = backbone(x).detach()
                loss = criterion(head(feats.float() + preview.float()), y)
                loss.backward()
                optimizer.step()
        """
    )


def test_trap_inference_export_and_checkpoint_sizes():
    """ultralytics/yolov5@5081342f04fb287fc2e5f2b5a4e06752b7937b1c, val.py and export.py
    (``model.half()`` to validate or export under ``no_grad``, ``eval()``) and
    dmlc/gluon-cv@567775619f3b97d47e7c360748912a4fd883ff52,
    scripts/classification/imagenet/verify_pretrained.py (a network that loads its
    parameters before it is cast)."""
    check(
        """
        import torch
        import torch.nn.functional as F
        from mxnet import gluon
        from mxnet.contrib import amp

        @torch.no_grad()
        def run(model, loader):
            model.half().eval()
            for x, y in loader:
                probs = F.softmax(model(x.half()), dim=1)

        def export(model, path):
            model.eval()
            model = model.half()
            out = F.log_softmax(model(torch.zeros(1, 3, 640, 640).half()), 1)
            torch.onnx.export(model, out, path)

        amp.init()
        net = gluon.nn.HybridSequential()
        net.add(gluon.nn.Dense(1001))
        net.load_parameters('imagenet.params')
        """
    )


_QA_MODEL = """
    import mxnet as mx
    from mxnet.gluon import nn
    class ModelForQA(mx.gluon.HybridBlock):
        def __init__(self, backbone, dropout_prob=0.1):
            super().__init__()
            self.backbone = backbone
            self.answerable_scores = nn.Dense(2, flatten=False)
        def forward(self, tokens, valid_length, p_mask):
            contextual_embedding = self.backbone(tokens, valid_length)
            scores = self.answerable_scores(contextual_embedding)
            return mx.npx.log_softmax(scores, axis=-1)  # MARK
    """
_QA_SCRIPT = """
    import argparse
    import mxnet as mx
    from mxnet.contrib import amp
    from models import ModelForQA
    def parse_args():
        parser = argparse.ArgumentParser()
        parser.add_argument('--do_train', action='store_true')
        parser.add_argument('--do_eval', action='store_true')
        parser.add_argument('--dtype', type=str, default='float32')
        return parser.parse_args()
    def get_network(backbone, dropout=0.1):
        qa_net = ModelForQA(backbone=backbone, dropout_prob=dropout)
        qa_net.initialize()
        return qa_net
    def train(args):
        use_amp = args.dtype == 'float16'
        if use_amp:
            amp.init()
        qa_net = get_network(backbone)
        trainer = mx.gluon.Trainer(qa_net.collect_params(), 'adam')
        for tokens, valid_length, p_mask in loader:
            with mx.autograd.record():
                out = qa_net(tokens, valid_length, p_mask)
                loss = -out.mean()
            loss.backward()
            trainer.step(1)
    def NAME(args):
        qa_net = get_network(backbone)
        if args.dtype == 'float16':
            qa_net.cast('float16')
        BODY
    if __name__ == '__main__':
        args = parse_args()
        if args.do_train:
            train(args)
        if args.do_eval:
            NAME(args)
    """


def test_trap_a_model_class_another_module_casts_only_to_evaluate(tmp_path):
    """dmlc/gluon-nlp@HEAD (GitHub, 2026), scripts/question_answering/run_squad.py and
    models.py (shortened): ``train()`` turns on ``amp.init()`` under ``--dtype float16`` (the
    log_softmax stays float32 there); ``evaluate()`` casts the network to float16 to run the dev
    set. The model's log_softmax is float16 only in evaluation: not a finding."""
    body = (
        "for tokens, valid_length, p_mask in dev_loader:\n"
        "            all_results.append(qa_net(tokens, valid_length, p_mask))"
    )
    script = _QA_SCRIPT.replace("NAME", "evaluate").replace("BODY", body)
    model = _QA_MODEL.replace("  # MARK", "")
    check_project(tmp_path, {"models.py": model, "run_squad.py": script}, select={"AMP101"})


def test_a_model_class_another_module_casts_to_train_is_reported(tmp_path):
    """The same project with the float16 cast in a function that trains the network (no
    ``amp.init`` on that path): the model's log_softmax is a float16 output."""
    body = "trainer = mx.gluon.Trainer(qa_net.collect_params(), 'adam')\n        trainer.step(1)"
    script = _QA_SCRIPT.replace("NAME", "finetune").replace("BODY", body)
    mark = (
        "  # AMP101 (run_squad.py: --do_eval --dtype float16 without run_squad.py: --do_train"
        " --dtype float16)"
    )
    model = _QA_MODEL.replace("  # MARK", mark)
    check_project(tmp_path, {"models.py": model, "run_squad.py": script}, select={"AMP101"})
