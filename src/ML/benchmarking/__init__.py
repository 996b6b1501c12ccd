"""The benchmark pipeline's computations: grid expansion, cell status, scores, normalization, statistics, figures."""
