"""The ANN side: the digits (:mod:`~snnlib.ann.data`), the book's models and their training
(:mod:`~snnlib.ann.models`, :mod:`~snnlib.ann.activations`, :mod:`~snnlib.ann.regularize`), and
the zoo of typical Keras models with their conversion measured (:mod:`~snnlib.ann.zoo`)."""

__all__ = []  # the API is in the modules above
