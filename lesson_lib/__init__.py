"""lesson_lib: the tested reference components of the course
"Semantic Image Inpainting Through Improved Wasserstein GANs" (Vitoria, Sintes, Ballester 2019).

Each module holds one concept and is built by hand in one lesson first:

    config       run modes, device, seeds, paths                 (lesson 00)
    data         embedded datasets and real CelebA / SVHN loaders (lesson 00)
    viz          image grids                                      (lesson 00)
    models       LayerNorm2d, residual blocks, Generator, Critic  (lesson 03, Fig. 3)
    wgan         WGAN-GP losses and the training loop             (lessons 02, 04; eq. 3)
    checkpoints  save / load generator+critic pairs               (lesson 04)
    masks        inpainting masks and the weights W               (lesson 05; eq. 5)
    losses       contextual, gradient and prior losses            (lessons 05-07; eq. 6-8)
    inpaint      batched latent search                            (lesson 07; eq. 4)
    poisson      Poisson blending and harmonic inpainting         (lesson 08; eq. 9)
    metrics      MSE, PSNR, SSIM, semantic accuracy               (lesson 09; eq. 10)
    widgets      slider callbacks                                 (lesson 07)
    assignments  student notebooks from the lessons (TODO blocks)  (teachers)

Conventions, used everywhere:

* images are float tensors (N, C, H, W) in [-1, 1]; a single image may be (C, H, W);
* a mask M is 1 on KNOWN pixels and 0 in the hole, as in the paper, shape (N, 1, H, W) or (H, W).
  Classical libraries (OpenCV, scikit-image) use the opposite convention; we convert at the
  boundary and say so;
* metrics are reported on the 0..255 scale as in the paper's tables;
* every random choice takes a seed or a ``torch.Generator``; CPU results are reproducible.
"""

__version__ = "0.1.0"
