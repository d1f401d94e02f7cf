"""The two bundled architectures: a classic UNet and a ResNet-BasicBlock PSPNet."""

import torch
import torch.nn as nn
import torch.nn.functional as F


def conv_bn_relu(cin, cout, bias=True):
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=bias), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class DoubleConv(nn.Sequential):
    def __init__(self, cin, cout):
        super().__init__(*conv_bn_relu(cin, cout), *conv_bn_relu(cout, cout))


class UNet(nn.Module):
    """UNet with long skip connections: 4 levels, Conv-BN-ReLU blocks, ConvTranspose up."""

    def __init__(self, in_ch=1, out_ch=4, base=12):
        super().__init__()
        c = [base, base * 2, base * 4, base * 8]
        self.enc1 = DoubleConv(in_ch, c[0])
        self.enc2 = DoubleConv(c[0], c[1])
        self.enc3 = DoubleConv(c[1], c[2])
        self.bottleneck = DoubleConv(c[2], c[3])
        self.up3 = nn.ConvTranspose2d(c[3], c[2], 2, stride=2)
        self.dec3 = DoubleConv(c[3], c[2])
        self.up2 = nn.ConvTranspose2d(c[2], c[1], 2, stride=2)
        self.dec2 = DoubleConv(c[2], c[1])
        self.up1 = nn.ConvTranspose2d(c[1], c[0], 2, stride=2)
        self.dec1 = DoubleConv(c[1], c[0])
        self.head = nn.Conv2d(c[0], out_ch, 1)

    def forward(self, x):
        e1 = self.enc1(x)
        e2 = self.enc2(F.max_pool2d(e1, 2))
        e3 = self.enc3(F.max_pool2d(e2, 2))
        b = self.bottleneck(F.max_pool2d(e3, 2))
        d3 = self.dec3(torch.cat([self.up3(b), e3], 1))
        d2 = self.dec2(torch.cat([self.up2(d3), e2], 1))
        d1 = self.dec1(torch.cat([self.up1(d2), e1], 1))
        return self.head(d1)


class BasicBlock(nn.Module):
    """ResNet BasicBlock: two 3x3 Conv-BN with a short (identity or 1x1) connection."""

    def __init__(self, cin, cout, stride=1):
        super().__init__()
        # Like torchvision's ResNet: no conv bias in the backbone.
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + identity)


class PSPNet(nn.Module):
    """PSPNet: small ResNet (BasicBlock) backbone at 1/4 resolution + pyramid pooling."""

    def __init__(self, in_ch=1, out_ch=4, width=16, bins=(1, 2, 4, 8)):
        super().__init__()
        w = [width, width * 2, width * 4]
        self.stem = nn.Sequential(*conv_bn_relu(in_ch, w[0], bias=False))
        self.layer1 = nn.Sequential(BasicBlock(w[0], w[0]), BasicBlock(w[0], w[0]))
        self.layer2 = nn.Sequential(BasicBlock(w[0], w[1], 2), BasicBlock(w[1], w[1]))
        self.layer3 = nn.Sequential(BasicBlock(w[1], w[2], 2), BasicBlock(w[2], w[2]))
        self.bins = bins
        red = w[2] // len(bins)
        self.ppm = nn.ModuleList(
            nn.Sequential(nn.Conv2d(w[2], red, 1), nn.BatchNorm2d(red), nn.ReLU(inplace=True))
            for _ in bins
        )
        self.fuse = nn.Sequential(*conv_bn_relu(w[2] + red * len(bins), w[1]))
        self.head = nn.Conv2d(w[1], out_ch, 1)

    BACKBONE = ("stem", "layer1", "layer2", "layer3")

    def backbone_state(self):
        """The backbone's parameters and buffers (what a pretrained ResNet would provide)."""
        return {k: v for k, v in self.state_dict().items() if k.split(".")[0] in self.BACKBONE}

    def forward(self, x):
        size = x.shape[-2:]
        f = self.layer3(self.layer2(self.layer1(self.stem(x))))
        fs = f.shape[-2:]
        pooled = [f]
        for b, branch in zip(self.bins, self.ppm):
            p = branch(F.adaptive_avg_pool2d(f, b))
            pooled.append(F.interpolate(p, size=fs, mode="bilinear", align_corners=False))
        out = self.head(self.fuse(torch.cat(pooled, 1)))
        return F.interpolate(out, size=size, mode="bilinear", align_corners=False)


ARCHS = {"unet": UNet, "pspnet": PSPNet}
