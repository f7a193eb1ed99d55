"""Tools beside the trainer: the work of the service side that needs torch (the zoo's catalog builder and
weights check, the recommender's throughput tables). The services run them as subprocesses or at build time
and never import them (make lint checks it), so the services start fast and stay small."""
