"""TrainingService: validates and queues training tasks, follows them through trainer events."""
