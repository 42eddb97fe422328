"""The built-in layer converters, one module per layer family; importing this package registers
them all."""
from snnlib.convert.layers import (  # noqa: F401
    activations,
    affine,
    joins,
    pooling,
    refused,
    reshaping,
    weighted,
)
