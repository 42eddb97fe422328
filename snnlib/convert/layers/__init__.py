"""The built-in layer converters, one module per layer family; importing this package registers
them all, in this order (the order ``check`` lists the supported types in)."""
# isort: skip_file
from snnlib.convert.layers import weighted  # noqa: F401
from snnlib.convert.layers import pooling  # noqa: F401
from snnlib.convert.layers import reshaping  # noqa: F401
from snnlib.convert.layers import activations  # noqa: F401
from snnlib.convert.layers import affine  # noqa: F401
from snnlib.convert.layers import joins  # noqa: F401
from snnlib.convert.layers import qcfs  # noqa: F401
from snnlib.convert.layers import refused  # noqa: F401

__all__ = []  # the API is in the modules above
