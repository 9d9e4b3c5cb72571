"""Item 5: library constructors whose argument becomes a reduced-precision layer."""

from __future__ import annotations

from realcase import check


def test_class_counts_of_model_factories_and_a_computed_detection_head():
    """dmlc/gluon-cv@567775619f3b97d47e7c360748912a4fd883ff52,
    scripts/classification/imagenet/train_imagenet.py (``get_model(name, classes=classes)``),
    huggingface/pytorch-image-models@aa4b5850c1543fa488abf260f18390eda46cf85d, train.py
    (``create_model(..., num_classes=args.num_classes)``), torchvision's ``resnet50`` and an
    SSD-style head of ``num_anchors * (num_classes + 1)`` channels."""
    check(
        """
        import argparse
        import timm
        import torchvision
        from gluoncv.model_zoo import get_model
        from torch import nn
        parser = argparse.ArgumentParser()
        parser.add_argument('--classes', type=int, default=100)
        parser.add_argument('--num-classes', type=int, default=21)
        parser.add_argument('--dtype', default='float32')
        opt = parser.parse_args()
        net = get_model('resnet50_v1b', classes=opt.classes)  # AMP201 (--dtype bfloat16|float16)
        net.cast(opt.dtype)
        model = timm.create_model('resnet50', num_classes=opt.num_classes).half()  # AMP201
        other = torchvision.models.resnet50(num_classes=10).half()  # AMP201
        num_anchors, num_classes = 6, 20
        head = nn.Conv2d(512, num_anchors * (num_classes + 1), 3).half()  # AMP201
        """
    )


def test_keras_cv_and_keras_hub_classifiers():
    """keras-team/keras-cv@94b0a551d03ee9de3d81663e2c1a680cb113f7f1,
    examples/training/classification/imagenet/basic_training.py: ``ImageClassifier(...,
    num_classes=N)`` builds a softmax Dense head of N units under the global policy."""
    check(
        """
        import keras_cv
        import keras_hub
        from tensorflow import keras
        keras.mixed_precision.set_global_policy('mixed_float16')
        a = keras_cv.models.ImageClassifier(backbone=b, num_classes=10)  # AMP101 # AMP201
        c = keras_hub.models.ImageClassifier(backbone=b, num_classes=1000)
        """
    )


def test_trap_pretrained_heads_keras_applications_and_aligned_counts():
    """dmlc/gluon-cv@567775619f3b97d47e7c360748912a4fd883ff52,
    scripts/classification/imagenet/train_imagenet.py (the distillation teacher loaded with
    ``pretrained=True``): its 1000 classes are fixed by the weights; Keras applications load
    ImageNet weights by default."""
    check(
        """
        import torchvision
        from gluoncv.model_zoo import get_model
        from mxnet.contrib import amp
        from tensorflow import keras
        amp.init()
        keras.mixed_precision.set_global_policy('mixed_float16')
        teacher = get_model('resnet152_v1d', pretrained=True, classes=1001)
        net = get_model('resnet50_v1b', classes=1000)
        app = keras.applications.ResNet50(classes=1001)
        vision = torchvision.models.resnet50(pretrained=True, num_classes=1001).half()
        """
    )
