"""GAN data augmentation (notebook 05).

- ``dcgan``: a DCGAN, the GAN losses and the adversarial training loop.
- ``dagan``: a DAGAN-style conditional generator (one drawing + noise -> another drawing).
- ``augmentation``: the chapter's experiments: few-shot learners with and without generated images
  on the same episodes (the notebook's table and Run button), sample quality and collapse
  detection, and the whole chapter as ``benchmarks/gan_augmentation.py`` runs it.
- ``low_data``: the DAGAN paper's own protocol: one classifier over many new classes, trained from
  scratch on a few real drawings each, with and without generated ones (``benchmarks/dagan_protocol.py``).
- ``widgets``: notebook 05's controls and figures, calling ``augmentation``.
"""

from .dagan import DAGANGenerator
from .dcgan import DCGANDiscriminator, DCGANGenerator

__all__ = ["DCGANGenerator", "DCGANDiscriminator", "DAGANGenerator"]
