"""The shared registry (issue 24): one idiom for layer converters, neuron models and
normalization rules, as nengo-dl's ``Converter.register``."""
import threading
import warnings
from collections.abc import Mapping

import pytest

from snnlib.registry import Registry, UnknownNameError
from snnlib.validation import ArgumentError


class Base:
    name = ""


def rules():
    return Registry("rule", base=Base, key_attribute="name", hint=" or a Base instance")


def test_register_as_a_decorator_reads_the_key_attribute():
    table = rules()

    @table.register
    class One(Base):
        name = "one"

    # the decorator returns the class unchanged, and the table maps its name to it
    assert One.name == "one" and table["one"] is One
    assert list(table) == ["one"] and len(table) == 1 and "one" in table
    assert table.get("two") is None and "two" not in table
    # an unhashable key is simply not there
    assert [1] not in table and table.get([1], 0) == 0


def test_register_with_an_explicit_key():
    table = Registry("converter", base=Base)

    @table.register(key=int)
    class ForInt(Base):
        pass

    class ForFloat(Base):
        pass

    # the plain call returns the class too
    assert table.register(ForFloat, key=float) is ForFloat
    assert table[int] is ForInt and table[float] is ForFloat
    # names in messages: a class by its __name__
    assert table.names() == ["float", "int"]
    # without a key attribute, the key must be given
    with pytest.raises(TypeError, match="needs its key"):
        table.register(ForInt)


def test_it_is_a_read_only_mapping():
    table = rules()
    table.register(type("One", (Base,), {"name": "one"}))
    assert isinstance(table, Mapping)
    with pytest.raises(TypeError):
        table["two"] = Base  # no __setitem__: register is the way in
    with pytest.raises(TypeError):
        del table["one"]  # no __delitem__: unregister is the way out
    assert dict(table) == {"one": table["one"]}


def test_replacing_warns_and_the_same_class_again_does_not():
    table = rules()

    class First(Base):
        name = "x"

    class Second(Base):
        name = "x"

    table.register(First)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table.register(First)  # the same class again: silent
    with pytest.warns(UserWarning, match="rule 'x': First replaced by Second") as seen:
        table.register(Second)
    # the warning points at the code that registered, not into the registry
    assert seen[0].filename == __file__
    assert table["x"] is Second
    assert table.unregister("x") is Second and "x" not in table
    with pytest.raises(UnknownNameError):
        table.unregister("x")


def test_unknown_names_are_listed():
    table = rules()
    for name in ("b", "a"):
        table.register(type(name.upper(), (Base,), {"name": name}))
    with pytest.raises(UnknownNameError) as info:
        table["c"]
    message = str(info.value)
    # the unknown key, the registered ones sorted, and the hint; not KeyError's quoted repr
    assert message == "unknown rule 'c'; use one of ['a', 'b'] or a Base instance"
    # a KeyError (Mapping semantics) and a ValueError / TypeError (a bad argument)
    assert isinstance(info.value, KeyError) and isinstance(info.value, ArgumentError)
    assert isinstance(info.value, ValueError) and isinstance(info.value, TypeError)


def test_bad_values_are_refused():
    table = rules()
    with pytest.raises(TypeError, match="must be a Base subclass with a non-empty name"):
        table.register(Base)  # no name
    with pytest.raises(TypeError, match="must be a Base subclass"):
        table.register(int, key="int")
    with pytest.raises(TypeError, match="must be a Base subclass"):
        table.register(object())
    assert len(table) == 0


def test_registering_from_several_threads():
    table = rules()
    classes = [type(f"C{i}", (Base,), {"name": f"c{i}"}) for i in range(200)]
    barrier = threading.Barrier(4)

    def work(part):
        barrier.wait()
        for cls in part:
            table.register(cls)
            list(table)  # iterating while others register is safe (a snapshot)

    threads = [threading.Thread(target=work, args=(classes[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(table) == 200 and all(table[cls.name] is cls for cls in classes)


def test_the_three_registries_are_one_class():
    from snnlib.convert import CONVERTERS, ConverterRegistry, LayerConverter
    from snnlib.normalize import NORMALIZATIONS, NormalizationRule
    from snnlib.sim.neurons import NEURON_MODELS, NeuronModel

    for table, base in ((CONVERTERS, LayerConverter), (NEURON_MODELS, NeuronModel),
                        (NORMALIZATIONS, NormalizationRule)):
        assert isinstance(table, Registry) and table.base is base
    assert isinstance(CONVERTERS, ConverterRegistry)
    # the built-ins are there, by key
    assert {"spiking_relu", "if", "lif"} <= set(NEURON_MODELS)
    assert {"max", "percentile"} <= set(NORMALIZATIONS)


def test_the_old_decorators_are_the_registries_register():
    import tensorflow as tf

    import snnlib
    from snnlib.convert import CONVERTERS, LayerConverter
    from snnlib.normalize import NORMALIZATIONS, NormalizationRule, get_rule
    from snnlib.sim.neurons import NEURON_MODELS, SpikingReLU, get_neuron_model

    class Doubling(SpikingReLU):
        name = "doubling_test"

    class Half(NormalizationRule):
        name = "half_test"

        def compute(self, values):
            return 0.5 * float(values.max())

    class Ones(tf.keras.layers.Layer):
        pass

    class OnesConverter(LayerConverter):
        pass

    try:
        assert snnlib.register_neuron_model(Doubling) is Doubling
        assert snnlib.register_normalization(Half) is Half
        assert snnlib.register_converter(Ones)(OnesConverter) is OnesConverter
        assert get_neuron_model("doubling_test") == Doubling()
        assert isinstance(get_rule("half_test"), Half)
        assert CONVERTERS[Ones] is OnesConverter
        # a replacement through the old names warns at the caller's line
        with pytest.warns(UserWarning, match="neuron model 'doubling_test'") as seen:
            snnlib.register_neuron_model(type("Other", (SpikingReLU,),
                                              {"name": "doubling_test"}))
        assert seen[0].filename == __file__
        with pytest.warns(UserWarning, match="Ones.*replaced by LayerConverter") as seen:
            snnlib.register_converter(Ones)(LayerConverter)
        assert seen[0].filename == __file__
        with pytest.warns(UserWarning, match="Ones.*replaced by OnesConverter") as seen:
            CONVERTERS.register(Ones, OnesConverter)
        assert seen[0].filename == __file__
    finally:
        NEURON_MODELS.unregister("doubling_test")
        NORMALIZATIONS.unregister("half_test")
        CONVERTERS.unregister(Ones)
    # the unknown-name messages keep their wording
    with pytest.raises(ValueError, match=r"unknown neuron 'doubling_test'; use one of \[.*'if'"):
        get_neuron_model("doubling_test")
    with pytest.raises(ValueError, match=r"unknown normalization 'half_test'; use one of "
                       r"\['max', 'percentile'\], a callable"):
        get_rule("half_test")
