"""Stands for the GPU image, which has no CodeCarbon: importing it fails, as it would there."""

raise ImportError("codecarbon is not installed on the GPU image (blocked by tests/benchmarks/gpu_image)")
