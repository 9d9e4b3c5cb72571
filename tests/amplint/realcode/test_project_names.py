# ruff: noqa: E501  (a finding is marked on the line it is reported at)
"""Names a module gets from the rest of its project: a function returning a module it imports
(a lazy import helper), a property of a project class returning the model it casts, and the
functions of a star import (``from .utils import *``)."""

from __future__ import annotations

from realcase import check_project

# autogluon 0.0.15 (PyPI), autogluon/utils/try_import.py (shortened).
TRY_IMPORT = """
def try_import_mxboard():
    try:
        import mxboard
    except ImportError:
        raise ImportError("pip install mxboard")

def try_import_gluonnlp():
    try:
        import gluonnlp
        assert gluonnlp.__version__ >= '0.8.1'
    except ImportError:
        raise ImportError("pip install gluonnlp==0.8.1")
    return gluonnlp
"""


def _text_pipeline(unscale: str) -> str:
    """autogluon 0.0.15, autogluon/task/text_classification/pipeline.py (train_text_classification,
    shortened): GluonNLP comes from the lazy import helper, ``amp.init()`` and
    ``amp.scale_loss`` with ``--dtype float16``, then ``nlp.utils.clip_grad_global_norm``."""
    return f"""
        import mxnet as mx
        from mxnet import gluon
        from ..utils.try_import import try_import_gluonnlp

        def train_text_classification(args):
            nlp = try_import_gluonnlp()
            if args.dtype == 'float16':
                from mxnet.contrib import amp
                amp.init()
            bert, vocabulary = nlp.model.get_model(name=args.net, pretrained=True)
            model = bert
            loss_function = gluon.loss.SoftmaxCELoss()
            trainer = gluon.Trainer(model.collect_params(), 'bertadam', {{'learning_rate': args.lr}})
            if args.dtype == 'float16':
                amp.init_trainer(trainer)
            params = [p for p in model.collect_params().values() if p.grad_req != 'null']
            for batch_id, seqs in enumerate(train_data):
                with mx.autograd.record():
                    input_ids, valid_length, segment_ids, label = seqs
                    out = model(input_ids, segment_ids, valid_length)
                    ls = loss_function(out, label).mean()
                    if args.dtype == 'float16':
                        with amp.scale_loss(ls, trainer) as scaled_loss:
                            mx.autograd.backward(scaled_loss)
                    else:
                        ls.backward()
                trainer.allreduce_grads(){unscale}
                nlp.utils.clip_grad_global_norm(params, 1)  # AMP305 (args.dtype=float16)
                trainer.update(1)
        """


def _lazy_import_project(pipeline: str) -> dict[str, str]:
    return {
        "agx/__init__.py": "",
        "agx/utils/__init__.py": "",
        "agx/utils/try_import.py": TRY_IMPORT,
        "agx/task/__init__.py": "",
        "agx/task/pipeline.py": pipeline,
    }


def test_a_module_a_lazy_import_helper_returns_names_its_functions(tmp_path):
    """autogluon 0.0.15: ``nlp = try_import_gluonnlp()`` is GluonNLP, so
    ``nlp.utils.clip_grad_global_norm`` clips the gradients amp.scale_loss left scaled."""
    check_project(tmp_path, _lazy_import_project(_text_pipeline("")))


def test_gradients_unscaled_before_clipping_through_the_lazy_import_stay_silent(tmp_path):
    """The same script with ``amp.unscale(trainer)`` before the clipping (the fix)."""
    pipeline = _text_pipeline("\n                amp.unscale(trainer)").replace(
        "  # AMP305 (args.dtype=float16)", ""
    )
    check_project(tmp_path, _lazy_import_project(pipeline))


# autogluon 0.0.15, autogluon/task/image_classification/processing_params.py (Getmodel_kwargs,
# shortened): the dtype is float16 with the optimizer's multi_precision, and the properties
# build and cast the network and the distillation teacher.
PARAMS = """
from .nets import get_network

class ModelKwargs:
    def __init__(self, context, classes, model_name, model_teacher, multi_precision=False):
        self._kwargs = {'ctx': context, 'pretrained': True, 'num_classes': classes}
        self._model_name = model_name
        self._model_teacher = model_teacher
        if multi_precision:
            self._dtype = 'float16'
        else:
            self._dtype = 'float32'

    @property
    def dtype(self):
        return self._dtype

    @property
    def get_teacher(self):
        net = get_network(self._model_teacher, **self._kwargs)
        net.cast(self._dtype)
        return net

    @property
    def get_net(self):
        net = get_network(self._model_name, **self._kwargs)
        net.cast(self._dtype)
        return net
"""
NETS = """
from gluoncv.model_zoo import get_model

def get_network(name, **kwargs):
    return get_model(name, **kwargs)
"""
# autogluon 0.0.15, autogluon/task/image_classification/utils.py (default_train_fn and
# default_val_fn, shortened).
UTILS = """
import mxnet as mx

__all__ = ['default_train_fn', 'default_val_fn']

def default_val_fn(net, batch, metric, dtype='float32'):
    with mx.autograd.pause(train_mode=False):
        data, label = batch
        outputs = [net(X.astype(dtype, copy=False)) for X in data]
    metric.update(label, outputs)

def default_train_fn(net, batch, batch_size, criterion, trainer, dtype='float32', metric=None):
    data, label = batch
    with mx.autograd.record():
        outputs = [net(X.astype(dtype, copy=False)) for X in data]
        loss = [criterion(yhat, y.astype(dtype, copy=False)) for yhat, y in zip(outputs, label)]  # AMP101 (args.optimizer.multi_precision)
    for l in loss:
        l.backward()
    trainer.step(batch_size)
    if metric:
        metric.update(label, outputs)  # AMP101 (args.optimizer.multi_precision)
"""


def _image_pipeline(multi_precision: str, teacher_mark: str) -> str:
    """autogluon 0.0.15, autogluon/task/image_classification/pipeline.py
    (train_image_classification, shortened): the network and the teacher are properties of
    the kwargs object; the training and validation steps come through ``from .utils import *``
    and the Trainer gets the optimizer configuration (``args.optimizer``)."""
    return f"""
        import mxnet as mx
        from mxnet import gluon, nd
        from .params import ModelKwargs
        from .utils import *
        from ..core import *

        def train_image_classification(args, reporter):
            target_kwargs = ModelKwargs(ctx, classes, args.net, args.tricks.teacher_name,
                                        {multi_precision})
            net = target_kwargs.get_net
            if args.tricks.teacher_name:
                teacher = target_kwargs.get_teacher

                def teacher_prob(data):
                    return [
                        nd.softmax(teacher(X.astype(target_kwargs.dtype, copy=False)) / args.tricks.temperature){teacher_mark}
                        for X in data
                    ]
            L = gluon.loss.SoftmaxCrossEntropyLoss()
            metric = mx.metric.Accuracy()
            trainer = gluon.Trainer(net.collect_params(), args.optimizer)

            def train(epoch):
                for i, batch in enumerate(train_data):
                    default_train_fn(net, batch, batch_size, L, trainer, target_kwargs.dtype, metric)

            def test(epoch):
                metric.reset()
                for i, batch in enumerate(val_data):
                    default_val_fn(net, batch, metric, target_kwargs.dtype)

            for epoch in range(1, args.epochs + 1):
                train(epoch)
                test(epoch)
        """


def _image_project(pipeline: str, utils: str) -> dict[str, str]:
    return {
        "agx/__init__.py": "",
        "agx/core/__init__.py": "def args(**kwargs):\n    return lambda f: f\n",
        "agx/task/__init__.py": "",
        "agx/task/nets.py": NETS,
        "agx/task/params.py": PARAMS,
        "agx/task/utils.py": utils,
        "agx/task/pipeline.py": pipeline,
    }


def test_a_property_returning_a_cast_model_reaches_the_star_imported_training_step(tmp_path):
    """autogluon 0.0.15: ``net = target_kwargs.get_net`` is cast to float16 where the
    optimizer's multi_precision is set; its outputs reach the loss and the metric of
    ``default_train_fn`` (a star import), and the teacher's reach ``nd.softmax``. The backward
    relies on the multi_precision master weights (AMP306's case, not AMP301); the validation
    step, called from ``test``, evaluates."""
    pipeline = _image_pipeline(
        "args.optimizer.multi_precision",
        "  # AMP101 (args.optimizer.multi_precision args.tricks.teacher_name)",
    )
    check_project(tmp_path, _image_project(pipeline, UTILS))


def test_a_property_of_an_object_built_for_float32_stays_silent(tmp_path):
    """The same project with ``multi_precision=False`` written at the call: the properties
    cast to float32."""
    pipeline = _image_pipeline("multi_precision=False", "")
    utils = UTILS.replace("  # AMP101 (args.optimizer.multi_precision)", "")
    check_project(tmp_path, _image_project(pipeline, utils))


# gluoncv 0.10.5.post0 (PyPI), gluoncv/model_zoo/rcnn/faster_rcnn/data_parallel.py
# (ForwardBackwardTask, shortened): the losses and the network come from the estimator.
DATA_PARALLEL = """
from mxnet import autograd

class ForwardBackwardTask:
    def __init__(self, net, optimizer, rpn_cls_loss, rcnn_cls_loss, amp_enabled):
        self.net = net
        self._optimizer = optimizer
        self.rpn_cls_loss = rpn_cls_loss
        self.rcnn_cls_loss = rcnn_cls_loss
        self.amp_enabled = amp_enabled

    def forward_backward(self, x):
        data, label, rpn_cls_targets = x
        with autograd.record():
            cls_pred, rpn_score, cls_targets = self.net(data, label)
            rpn_loss = self.rpn_cls_loss(rpn_score, rpn_cls_targets, rpn_cls_targets >= 0){rpn_mark}
            rcnn_loss = self.rcnn_cls_loss(cls_pred, cls_targets, cls_targets >= 0){rcnn_mark}
            total_loss = rpn_loss.sum() + rcnn_loss.sum()
            if self.amp_enabled:
                from mxnet.contrib import amp
                with amp.scale_loss(total_loss, self._optimizer) as scaled_losses:
                    autograd.backward(scaled_losses)
            else:
                total_loss.backward()
        return rpn_loss, rcnn_loss
"""


def _estimator(amp_init: str) -> str:
    """gluoncv 0.10.5.post0, gluoncv/auto/estimators/faster_rcnn/faster_rcnn.py and
    mask_rcnn/mask_rcnn.py (shortened): with the configuration's ``amp`` the network is cast to
    float16; the Mask R-CNN estimator also runs ``amp.init()`` then, the Faster R-CNN one
    does not."""
    return f"""
        import mxnet as mx
        from mxnet import gluon
        from mxnet.contrib import amp
        from ..model_zoo.data_parallel import ForwardBackwardTask

        class RCNNEstimator:
            def __init__(self, config):
                self._cfg = config{amp_init}

            def _init_network(self):
                self.net = gluon.model_zoo.vision.get_model(self._cfg.rcnn.base_network)
                if self._cfg.rcnn.amp:
                    self.net.cast('float16')

            def _fit(self, train_data):
                rpn_cls_loss = gluon.loss.SigmoidBinaryCrossEntropyLoss(from_sigmoid=False)
                rcnn_cls_loss = gluon.loss.SoftmaxCrossEntropyLoss()
                trainer = gluon.Trainer(self.net.collect_params(), 'sgd', {{'learning_rate': 0.01}})
                rcnn_task = ForwardBackwardTask(self.net, trainer, rpn_cls_loss, rcnn_cls_loss,
                                                amp_enabled=self._cfg.rcnn.amp)
                for batch in train_data:
                    rcnn_task.forward_backward(batch)
                    trainer.step(1)
        """


def _rcnn_project(estimator: str, mark: str) -> dict[str, str]:
    task = DATA_PARALLEL.replace("{rpn_mark}", mark).replace("{rcnn_mark}", mark)
    return {
        "gcv/__init__.py": "",
        "gcv/model_zoo/__init__.py": "",
        "gcv/model_zoo/data_parallel.py": task,
        "gcv/auto/__init__.py": "",
        "gcv/auto/estimator.py": estimator,
    }


def test_losses_another_module_passes_in_get_the_float16_outputs_of_the_model_it_casts(tmp_path):
    """gluoncv 0.10.5.post0, Faster R-CNN: the estimator casts the network to float16 with its
    ``amp`` configuration and hands it and its Gluon losses to the task of another module."""
    mark = "  # AMP101 (self._cfg.rcnn.amp)"
    check_project(tmp_path, _rcnn_project(_estimator(""), mark), select={"AMP101"})


def test_outputs_of_a_model_passed_in_under_the_importers_amp_init_stay_silent(tmp_path):
    """gluoncv 0.10.5.post0, Mask R-CNN: the same option runs ``amp.init()`` in the
    estimator, whose lists compute the losses of the task module in float32."""
    amp_init = "\n                if self._cfg.rcnn.amp:\n                    amp.init()"
    check_project(tmp_path, _rcnn_project(_estimator(amp_init), ""), select={"AMP101"})
