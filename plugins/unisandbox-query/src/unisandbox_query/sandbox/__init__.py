"""The sandbox: the corpus and the trainer that make the tiny query model."""
