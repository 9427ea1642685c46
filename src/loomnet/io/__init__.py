"""Files: model files (``.loom``, safetensors layout, no pickle), checkpoints, tables (CSV,
Parquet, ``.npy``) and the built-in datasets."""
