"""DAFL's image generator (Chen et al. ICCV 2019, arXiv:1904.01186, §4; a DCGAN-style generator, Radford et al. 2016).

``z ∈ R^latent`` → linear to ``width × s/4 × s/4`` → BN → ×2 upsample → conv3 → BN → LeakyReLU → ×2 upsample →
conv3 (width/2) → BN → LeakyReLU → conv3 → tanh → BN (no affine): the last, parameter-free BatchNorm standardises
the images per channel, so they land where the teacher's standardised inputs live.
"""

from __future__ import annotations

from torch import Tensor, nn

from kdlab.errors import ConfigError


class DAFLGenerator(nn.Module):
    """Latent noise ``(N, latent_dim)`` → images ``(N, channels, image_size, image_size)``."""

    def __init__(self, latent_dim: int = 100, image_size: int = 32, channels: int = 1, width: int = 128) -> None:
        super().__init__()
        if image_size % 4 or image_size < 4:
            raise ConfigError(f"the DAFL generator needs data.image_size divisible by 4, got {image_size}")
        if latent_dim < 1 or width < 2:
            raise ConfigError(f"kd.generator.latent_dim must be >= 1 and width >= 2, got {latent_dim}, {width}")
        self.latent_dim, self.width, self.start = latent_dim, width, image_size // 4
        self.project = nn.Sequential(nn.Linear(latent_dim, width * self.start**2))
        self.body = nn.Sequential(
            nn.BatchNorm2d(width),
            nn.Upsample(scale_factor=2),
            nn.Conv2d(width, width, 3, padding=1),
            nn.BatchNorm2d(width, 0.8),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Upsample(scale_factor=2),
            nn.Conv2d(width, width // 2, 3, padding=1),
            nn.BatchNorm2d(width // 2, 0.8),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(width // 2, channels, 3, padding=1),
            nn.Tanh(),
            nn.BatchNorm2d(channels, affine=False),
        )

    def forward(self, z: Tensor) -> Tensor:
        x = self.project(z).view(len(z), self.width, self.start, self.start)
        return self.body(x)
