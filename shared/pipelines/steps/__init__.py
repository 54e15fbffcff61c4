"""Step implementations (StepFn) for the pipeline executor."""
