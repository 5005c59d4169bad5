"""How good a model is: one metrics table, validation on any split, honest test figures without twins."""
