"""PyTorch: ``torch.nn`` layers, autocast, ``.half()`` and GradScaler."""

from __future__ import annotations

from amplint.frameworks import Dim, layer_table

_CONV = (Dim(0, "in_channels", image_input=True), Dim(1, "out_channels"))
_RNN = (Dim(1, "hidden_size"),)

LAYERS = layer_table(
    "torch",
    ("torch.nn", "torch.nn.modules"),
    {
        "Linear": (Dim(0, "in_features"), Dim(1, "out_features")),
        "LazyLinear": (Dim(0, "out_features"),),
        **{f"Conv{d}d": _CONV for d in (1, 2, 3)},
        **{f"ConvTranspose{d}d": _CONV for d in (1, 2, 3)},
        **{f"LazyConv{d}d": (Dim(0, "out_channels"),) for d in (1, 2, 3)},
        **{name: _RNN for name in ("LSTM", "GRU", "RNN", "LSTMCell", "GRUCell", "RNNCell")},
        "Embedding": (Dim(0, "num_embeddings"), Dim(1, "embedding_dim")),
    },
)

AUTOCAST = ("torch.autocast", "torch.cuda.amp.autocast", "torch.amp.autocast")
CPU_AUTOCAST = ("torch.cpu.amp.autocast",)
DATALOADER = ("torch.utils.data.DataLoader", "torch.utils.data.dataloader.DataLoader")
CLIP = ("torch.nn.utils.clip_grad_norm_", "torch.nn.utils.clip_grad_value_")
CLIP += ("torch.nn.utils.clip_grad_norm",)
LOSS_PREFIX = ("torch.nn.functional.", "torch.nn.")
FUNCTIONAL_LOSSES = tuple(
    f"torch.nn.functional.{name}"
    for name in (
        "cross_entropy",
        "nll_loss",
        "mse_loss",
        "l1_loss",
        "smooth_l1_loss",
        "huber_loss",
        "binary_cross_entropy",
        "binary_cross_entropy_with_logits",
        "kl_div",
        "softmax",
        "log_softmax",
    )
) + ("torch.softmax", "torch.log_softmax", "torch.nn.functional.ctc_loss")

# torchvision and timm model constructors: their class count sizes the output layer.
# Factories whose pretrained weights fix the class count (timm and Hugging Face make a new head).
PRETRAINED = (
    ("torchvision.models.", "pretrained", False),
    ("torchvision.models.", "weights", None),
)

MODEL_FACTORIES = (
    ("torchvision.models.", "num_classes"),  # resnet50(num_classes=N)
    ("timm.create_model", "num_classes"),
    ("timm.models.create_model", "num_classes"),
    ("transformers.", "num_labels"),  # AutoModelFor...Classification.from_pretrained(num_labels=N)
)
