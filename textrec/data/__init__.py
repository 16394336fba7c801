"""Datasets: label files and ArrayRecord sources, label encoding, augmentation, the Grain
pipeline, the embedded demo dataset, check_dataset / split."""
