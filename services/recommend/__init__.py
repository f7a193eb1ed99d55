"""RecommendationService: suggest a zoo model and how to train it."""
