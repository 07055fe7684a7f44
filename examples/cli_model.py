"""LightningCLI entry point for ``examples/config.yaml``: model, data and callbacks all come from the config.

python examples/cli_model.py fit --config examples/config.yaml
lightning-energy report runs/cli
"""

from __future__ import annotations

from lightning.pytorch.cli import LightningCLI


def main() -> None:
    # No model or data class given: any LightningModule / LightningDataModule named by class_path works.
    LightningCLI(save_config_kwargs={"overwrite": True})


if __name__ == "__main__":
    main()
