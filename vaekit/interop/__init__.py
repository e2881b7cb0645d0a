"""Conversions between vaekit runs and the model files of other libraries (diffusers' AutoencoderKL)."""
