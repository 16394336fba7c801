"""Datasets: label-file / ArrayRecord sources, label encodings, PaddleOCR augmentations, Grain
pipelines and the embedded demo dataset. See pipeline.py for the batch layout."""
from textrec.data.demo import demo_dataset_dir
from textrec.data.labels import LabelEncoder
from textrec.data.pipeline import (SCALES, eval_iter, eval_iter_from_config, scale_shapes,
                                   train_iter, train_iter_from_config)
from textrec.data.source import (ArrayRecordSource, DataError, LabelFileSource, open_split,
                                 parse_label_file)
