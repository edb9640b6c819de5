"""Amazon SageMaker integration: RecordIO-protobuf data files and related helpers."""
