"""Fine-tuning a ResNet-50 under autocast, stepping through the GradScaler."""

import torch
import torch.nn.functional as F
import torchvision

ACCUMULATE = 4  # batches per optimizer step


def fine_tune(loader, epochs=3):
    model = torchvision.models.resnet50(weights="IMAGENET1K_V2").cuda()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    scaler = torch.cuda.amp.GradScaler()
    for epoch in range(epochs):
        for i, (images, labels) in enumerate(loader):
            with torch.autocast(device_type="cuda", dtype=torch.float16):
                loss = F.cross_entropy(model(images.cuda()), labels.cuda()) / ACCUMULATE
            scaler.scale(loss).backward()
            if (i + 1) % ACCUMULATE == 0:
                scaler.step(optimizer)  # unscales, skips inf/NaN steps
                scaler.update()
                optimizer.zero_grad()
    return model
