"""Analyses of trained tickets: linear mode connectivity, flatness (Hessian spectra, sharpness), the SNR study."""
