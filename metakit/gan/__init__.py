"""GAN data augmentation (notebook 05).

- ``dcgan``: a DCGAN, the GAN losses and the adversarial training loop.
- ``dagan``: a DAGAN-style conditional generator (one drawing + noise -> another drawing).
- ``augmentation``: few-shot learners with and without generated images on the same episodes,
  sample quality and collapse detection.
- ``widgets``: notebook 05's controls and figures.
"""

from .dagan import DAGANGenerator
from .dcgan import DCGANDiscriminator, DCGANGenerator

__all__ = ["DCGANGenerator", "DCGANDiscriminator", "DAGANGenerator"]
