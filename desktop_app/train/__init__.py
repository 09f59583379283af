"""Training FDFaceNet (torch, the ``train`` extra): datasets, augmentation, losses, loop, LFW evaluation."""
