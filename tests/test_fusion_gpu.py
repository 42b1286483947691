"""CuPy kernel generation for fused clusters (functorch_lite/jit/fusion_gpu.py), without CUDA.

Three kinds of checks run on any machine:
* the generated CUDA text of known clusters, exactly;
* the op tables cover every primitive the CPU fusion accepts;
* programs compiled for a stand-in CuPy module (``FakeCupy``) whose kernels *interpret*
  the generated CUDA with NumPy (a tiny C-expression evaluator below: C's float/double
  literals and functions map to float32/float64 NumPy calls, declarations cast to their
  type) equal eager NumPy on random and special (nan, inf, -0.0) inputs. This checks the
  translation and the generated Python around the kernels; compiling the CUDA is left to
  tests/gpu/test_fusion_gpu.py on a GPU machine.
"""

import re

import numpy as np
import pytest
from workloads import gelu, layernorm, with_special_values

import functorch_lite as fl
import functorch_lite.numpy as fnp
from functorch_lite import core, tree
from functorch_lite.core import ShapedArray, aval_of, bind
from functorch_lite.jit import fusion, fusion_gpu
from functorch_lite.jit.codegen import Emitter
from functorch_lite.jit.fusion_gpu import cuda_sources
from functorch_lite.jit.graph import Eqn, Graph, Literal, Var
from functorch_lite.jit.passes import optimize
from functorch_lite.jit.staging import trace_to_graph
from functorch_lite.primitives.reductions import reduce_sum_p

# --------------------------------------------------------------------------------------
# A stand-in CuPy whose kernels evaluate the generated CUDA with NumPy
# --------------------------------------------------------------------------------------
_TOKEN = re.compile(r"\s*(\d+(?:\.\d*)?(?:e[-+]?\d+)?f?"   # 2, 0.5, 1e-05f
                    r"|[A-Za-z_]\w*|\|\||&&|[=!<>]="         # names, two-char operators
                    r"|[-+*/<>!?:(),&|^])")
_BINARY = {"||": (1, np.logical_or), "&&": (2, np.logical_and), "|": (3, np.bitwise_or),
           "^": (4, np.bitwise_xor), "&": (5, np.bitwise_and), "==": (6, np.equal),
           "!=": (6, np.not_equal), "<": (7, np.less), "<=": (7, np.less_equal),
           ">": (7, np.greater), ">=": (7, np.greater_equal), "+": (8, np.add),
           "-": (8, np.subtract), "*": (9, np.multiply), "/": (9, np.true_divide)}
_CTYPES = {"float": np.float32, "double": np.float64, "bool": np.bool_,
           "float16": np.float16}
# C's math library by its own names; "tanhf" is tanh on float, "tanh" on double.
_C_MATH = {"fabs": np.abs, "floor": np.floor, "ceil": np.ceil, "trunc": np.trunc,
           "rint": np.rint, "sqrt": np.sqrt, "cbrt": np.cbrt, "exp": np.exp,
           "exp2": np.exp2, "expm1": np.expm1, "log": np.log, "log2": np.log2,
           "log10": np.log10, "log1p": np.log1p, "sin": np.sin, "cos": np.cos,
           "tan": np.tan, "asin": np.arcsin, "acos": np.arccos, "atan": np.arctan,
           "sinh": np.sinh, "cosh": np.cosh, "tanh": np.tanh, "asinh": np.arcsinh,
           "acosh": np.arccosh, "atanh": np.arctanh, "pow": np.power, "atan2": np.arctan2,
           "hypot": np.hypot, "copysign": np.copysign}
_C_PREDICATES = {"isnan": np.isnan, "isinf": np.isinf, "isfinite": np.isfinite,
                 "signbit": np.signbit}


class _CExpression:
    """Evaluates one C expression of the generated subset over NumPy values."""

    def __init__(self, text, env):
        self.tokens = _TOKEN.findall(text)
        assert "".join(self.tokens) == re.sub(r"\s", "", text), f"cannot tokenize {text!r}"
        self.at = 0
        self.env = env

    def value(self):
        result = self.ternary()
        assert self.at == len(self.tokens), f"trailing tokens in {self.tokens}"
        return result

    def peek(self):
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self, expected=None):
        token = self.tokens[self.at]
        assert expected is None or token == expected, (token, expected)
        self.at += 1
        return token

    def ternary(self):
        cond = self.binary(1)
        if self.peek() != "?":
            return cond
        self.take("?")
        a = self.ternary()
        self.take(":")
        return np.where(cond, a, self.ternary())

    def binary(self, min_precedence):
        left = self.unary()
        while self.peek() in _BINARY and _BINARY[self.peek()][0] >= min_precedence:
            precedence, fn = _BINARY[self.take()]
            left = fn(left, self.binary(precedence + 1))
        return left

    def unary(self):
        if self.peek() == "-":
            self.take()
            x = self.unary()
            return -x if type(x) is int else np.negative(x)  # an int literal stays weak
        if self.peek() == "!":
            self.take()
            return np.logical_not(self.unary())
        return self.primary()

    def primary(self):
        token = self.take()
        if token == "(":
            x = self.ternary()
            self.take(")")
            return x
        if token[0].isdigit():
            if token.endswith("f"):
                return np.float32(token[:-1])
            return np.float64(token) if "." in token or "e" in token else int(token)
        if token in ("true", "false"):
            return np.bool_(token == "true")
        if self.peek() != "(":
            return self.env[token]
        self.take("(")
        args = [self.ternary()]
        while self.peek() == ",":
            self.take(",")
            args.append(self.ternary())
        self.take(")")
        return _c_call(token, args)


def _c_call(name, args):
    if name in _CTYPES:
        return np.asarray(args[0]).astype(_CTYPES[name])
    if name in _C_PREDICATES:
        return _C_PREDICATES[name](*args)
    ctype = np.float32 if name.endswith("f") and name[:-1] in _C_MATH else np.float64
    fn = _C_MATH[name[:-1] if ctype is np.float32 else name]
    return fn(*(np.asarray(a, ctype) for a in args))


def _run_statements(lines, env):
    """Run ``T name = expr;`` / ``name = expr;`` / ``return name;`` lines; the returned
    value, if any."""
    with np.errstate(all="ignore"):
        for line in lines:
            m = re.fullmatch(r"(?:(float16|float|double|bool) )?(\w+) = (.*);", line.strip())
            if m:
                ctype, name, expr = m.groups()
                value = _CExpression(expr, env).value()
                env[name] = value if ctype is None else np.asarray(value).astype(_CTYPES[ctype])
                continue
            m = re.fullmatch(r"return (\w+);", line.strip())
            assert m, f"unexpected statement {line!r}"
            return env[m.group(1)]


def _params(text):
    """``[(dtype, name)]`` of a CuPy parameter list such as ``float32 in0, bool out0``."""
    return [(np.dtype(p.split()[0]), p.split()[1]) for p in text.split(", ")]


class FakeElementwiseKernel:
    def __init__(self, in_params, out_params, operation, name, **kwargs):
        self.ins, self.outs = _params(in_params), _params(out_params)
        self.operation, self.calls = operation, 0

    def __call__(self, *args):
        self.calls += 1
        assert len(args) == len(self.ins)
        env = {name: np.asarray(a, dtype) for (dtype, name), a in zip(self.ins, args)}
        shape = np.broadcast_shapes(*(env[name].shape for _, name in self.ins))
        _run_statements(self.operation.splitlines(), env)
        outs = tuple(np.array(np.broadcast_to(env[name], shape), dtype)
                     for dtype, name in self.outs)
        return outs if len(outs) > 1 else outs[0]


class FakeReductionKernel:
    def __init__(self, in_params, out_params, map_expr, reduce_expr, post_map_expr,
                 identity, name, reduce_type=None, preamble=""):
        assert (reduce_expr, post_map_expr, identity) == ("a + b", "out0 = a", "0")
        self.ins, ((self.out_dtype, _),) = _params(in_params), _params(out_params)
        assert map_expr == f"fl_map({', '.join(name for _, name in self.ins)})"
        head, *body, close = preamble.strip().splitlines()
        assert re.fullmatch(r"__device__ (float|double) fl_map\((.*)\) \{", head) and close == "}"
        self.body, self.reduce_dtype = body, _CTYPES[reduce_type]

    def __call__(self, *args, axis):
        env = {name: np.asarray(a, dtype) for (dtype, name), a in zip(self.ins, args)}
        shape = np.broadcast_shapes(*(env[name].shape for _, name in self.ins))
        mapped = np.broadcast_to(_run_statements(self.body, env), shape)
        return np.asarray(mapped.sum(axis=axis, dtype=self.reduce_dtype), self.out_dtype)


class FakeCupy:
    """NumPy under CuPy's kernel constructors: what the generated code calls on a GPU."""

    ElementwiseKernel = FakeElementwiseKernel
    ReductionKernel = FakeReductionKernel

    def __getattr__(self, name):
        return getattr(np, name)


fake_cupy = FakeCupy()


def _graph(fun, *args):
    leaves, treedef = tree.flatten(args)
    graph, _, _ = trace_to_graph(lambda *xs: tree.leaves(fun(*treedef.unflatten(xs))),
                                 [aval_of(x) for x in leaves], name="f")
    return optimize(graph), leaves


def _compile_for_gpu(fun, *args):
    """``fun`` compiled as the jit compiles it for CuPy, but over ``fake_cupy``."""
    graph, leaves = _graph(fun, *args)
    return Emitter(fake_cupy).compile(graph, "f"), leaves


def _check_against_eager(fun, *args, rtol=1e-6, atol=0, signed_zeros=True):
    fn, leaves = _compile_for_gpu(fun, *args)
    got = fn(*[x._buf if type(x) is fl.Array else x for x in leaves])
    with np.errstate(all="ignore"):
        want = tree.leaves(fun(*args))
    assert len(got) == len(want)
    for g, w in zip(got, want):
        w = np.asarray(w)
        assert np.asarray(g).dtype == w.dtype and np.shape(g) == w.shape
        if w.dtype == bool:
            np.testing.assert_array_equal(g, w)
        else:
            np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, equal_nan=True)
            zeros = (w == 0) & signed_zeros
            np.testing.assert_array_equal(np.signbit(g[zeros]), np.signbit(w[zeros]),
                                          err_msg="signs of zeros differ")
    return fn


def _rand(shape, dtype=np.float32, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


# --------------------------------------------------------------------------------------
# Exact kernel source
# --------------------------------------------------------------------------------------
def test_gelu_chain_source():
    (k,) = cuda_sources(gelu, np.ones((8, 16), np.float32))
    assert (k.kind, k.in_params, k.out_params) == (
        "ElementwiseKernel", "float32 in0", "float32 out0")
    assert k.body == "\n".join([
        "float t0 = 0.5f * in0;",
        "float t1 = 0.044715f * in0;",
        "float t2 = t1 * in0;",
        "float t3 = t2 * in0;",
        "float t4 = in0 + t3;",
        "float t5 = 0.7978846f * t4;",
        "float t6 = tanhf(t5);",
        "float t7 = 1.0f + t6;",
        "float t8 = t0 * t7;",
        "out0 = t8;"])


def test_where_and_comparison_source_in_float64():
    def f(x, y):
        greater = x > y
        return fnp.where(greater, x, 0.1 * x), fnp.logical_not(greater)

    (k,) = cuda_sources(f, np.ones((4, 5)), np.ones((4, 5)))
    assert (k.in_params, k.out_params) == ("float64 in0, float64 in1",
                                          "float64 out0, bool out1")
    assert k.body == "\n".join([
        "bool t0 = in0 > in1;",
        "double t1 = 0.1 * in0;",
        "double t2 = t0 ? in0 : t1;",
        "bool t3 = !t0;",
        "out0 = t2;",
        "out1 = t3;"])


def test_mixed_dtypes_are_cast_to_each_loop_type():
    def f(x, i, h):
        y = fnp.astype(x, np.float16) * h   # float16 stored as float16, computed in float
        z = fnp.exp(x * i)                  # float32 * int32 promotes to float64
        return y - 1.0, z < 2.5

    x, i, h = np.ones((4, 5), np.float32), np.ones((4, 5), np.int32), np.ones(5, np.float16)
    kernels = {k.in_params: k.body for k in cuda_sources(f, x, i, h)}
    assert kernels == {
        "float32 in0, float16 in1": "\n".join([
            "float16 t0 = float16(in0);",
            "float16 t1 = float(t0) * float(in1);",
            "float16 t2 = float(t1) - 1.0f;",
            "out0 = t2;"]),
        "float32 in0, int32 in1": "\n".join([
            "double t0 = double(in0) * double(in1);",
            "double t1 = exp(t0);",
            "bool t2 = t1 < 2.5;",
            "out0 = t2;"]),
    }


def test_literals_and_weak_scalar_arguments():
    def f(x, s):
        return (x - 3.0) * s + 1e-5, x * -2 > s

    kernels = {k.out_params: k.body for k in cuda_sources(f, np.ones(4, np.float32), 2.0)}
    # A traced Python float arrives as a float64 argument and is rounded to the loop type,
    # as NumPy treats a weak scalar; literals are written in the loop type.
    assert kernels == {
        "float32 out0": "\n".join([
            "float t0 = in0 - 3.0f;",
            "float t1 = t0 * float(in1);",
            "float t2 = t1 + 1e-05f;",
            "out0 = t2;"]),
        "bool out0": "\n".join([
            "float t0 = in0 * (-2.0f);",
            "bool t1 = t0 > float(in1);",
            "out0 = t1;"]),
    }


def test_weak_scalars_round_to_float16_first_as_numpy_does():
    x = _rand((40, 50), np.float16)
    fn = _check_against_eager(lambda x, s: x * s - s, x, 0.1, rtol=0)
    assert "float(float16(in1))" in fn.source


def test_broadcast_inputs_are_passed_whole():
    def f(x, col, row):
        return fnp.tanh(x) * col + row

    x = np.ones((8, 16), np.float32)
    (k,) = cuda_sources(f, x, np.ones((8, 1), np.float32), np.ones(16, np.float32))
    assert k.in_params == "float32 in0, float32 in1, float32 in2"
    assert [v.aval.shape for v in k.inputs] == [(8, 16), (8, 1), (16,)]
    assert k.body == "float t0 = tanhf(in0);\nfloat t1 = t0 * in1;\nfloat t2 = t1 + in2;" \
                     "\nout0 = t2;"


def test_a_trailing_sum_is_a_reduction_kernel_recomputing_its_chain():
    ew, red, _ = cuda_sources(layernorm, np.ones((8, 16), np.float32))
    assert (ew.kind, ew.body) == ("ElementwiseKernel", "float t0 = in0 - in1;\nout0 = t0;")
    assert (red.kind, red.in_params, red.out_params, red.axes, red.reduce_type) == (
        "ReductionKernel", "float32 in0, float32 in1", "float32 out0", (1,), "float")
    assert red.body == ("__device__ float fl_map(float in0, float in1) {\n"
                        "    float t0 = in0 - in1;\n"
                        "    float t1 = t0 * t0;\n"
                        "    return t1;\n"
                        "}\n")


# --------------------------------------------------------------------------------------
# The op tables
# --------------------------------------------------------------------------------------
def _cpu_fusable_ufuncs():
    """Emit names of the registered primitives fusion's CPU criteria accept as ufuncs."""
    names = set()
    for prim in core.registry.values():
        ufunc = getattr(np, prim.emit, None) if type(prim.emit) is str else None
        if getattr(prim, "elementwise", False) and isinstance(ufunc, np.ufunc) \
                and ufunc.nout == 1:
            names.add(prim.emit)
    return names


def test_every_fusable_ufunc_maps_to_cuda_or_is_excluded_with_a_reason():
    fusable = _cpu_fusable_ufuncs()
    assert {"add", "tanh", "less", "logical_and", "maximum"} <= fusable
    tables = [set(fusion_gpu.FLOAT_OPS), set(fusion_gpu.BOOL_OPS), set(fusion_gpu.EXCLUDED)]
    assert sum(map(len, tables)) == len(set().union(*tables)), "an op is in two tables"
    assert fusable == set().union(*tables), (
        f"unmapped: {sorted(fusable - set().union(*tables))}; "
        f"stale: {sorted(set().union(*tables) - fusable)}")
    assert all(len(reason) > 20 for reason in fusion_gpu.EXCLUDED.values())


def _prim(emit):
    (prim,) = [p for p in core.registry.values() if p.emit == emit and p.elementwise]
    return prim, getattr(np, emit).nin


def _kernel_ops(fn):
    """Names of the equations inside the fused nodes of a compiled function."""
    return {e.prim.name for node in fn.graph.eqns if node.prim.name == "fused_elementwise"
            for e in node.subgraph.eqns}


@pytest.mark.parametrize("emit", sorted(fusion_gpu.FLOAT_OPS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_each_float_op_matches_eager_numpy(emit, dtype):
    prim, nin = _prim(emit)
    x, y = with_special_values(_rand((6, 7), dtype) * 2, _rand((6, 7), dtype, seed=1))

    def f(x, y):
        return bind(prim, *(x, y)[:nin]) * 2 * 3  # keeps the signs of zeros

    tol = 1e-6 if dtype != np.float16 else 1e-3
    # NumPy's float16 maximum/minimum return the first operand of tied zeros, its float32
    # and float64 loops the second; the kernels follow the latter.
    signed_zeros = not (dtype == np.float16 and emit in ("maximum", "minimum"))
    fn = _check_against_eager(f, x, y, rtol=tol, atol=tol, signed_zeros=signed_zeros)
    assert _kernel_ops(fn) == {prim.name, "multiply"} and "xp." not in fn.source


@pytest.mark.parametrize("emit", sorted(fusion_gpu.BOOL_OPS))
def test_each_bool_op_matches_eager_numpy(emit):
    prim, nin = _prim(emit)
    rule, _ = fusion_gpu.BOOL_OPS[emit]
    x, y = with_special_values(_rand((6, 7)), _rand((6, 7), seed=1))

    def f(x, y):
        args = (x > 0.5, y < 0) if rule == "bool" else (x, y)
        return fnp.logical_not(bind(prim, *args[:nin]))

    fn = _check_against_eager(f, x, y)
    assert {prim.name, "logical_not"} <= _kernel_ops(fn) and "xp." not in fn.source


# --------------------------------------------------------------------------------------
# Whole programs through the generated code (kernels interpreted by FakeCupy)
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_gelu_of_layernorm_matches_eager(dtype):
    x = _rand((16, 32), dtype)
    fn = _check_against_eager(lambda x: gelu(layernorm(x)), x,
                              rtol=1e-5 if dtype != np.float16 else 2e-2)
    # float16 means are taken in float32: more, smaller clusters than in float32.
    kernels = (fn.source.count("= _ElementwiseKernel"), fn.source.count("= _ReductionKernel"))
    assert kernels == ((3, 1) if dtype != np.float16 else (4, 2))


def test_where_compare_chain_with_integers_and_broadcasting_matches_eager():
    def f(x, col, i, s):
        mask = fnp.logical_and(x > col, i != 2)
        return fnp.where(mask, fnp.exp(x) * s, -x), fnp.astype(mask, np.float32) + col

    x, col = with_special_values(_rand((8, 9)), _rand((8, 1), seed=1))
    i = np.arange(72, dtype=np.int32).reshape(8, 9) % 4
    fn = _check_against_eager(f, x, col, i, 0.5)
    assert fn.source.count("= _ElementwiseKernel") == 1


def test_gradient_program_matches_eager():
    def loss(x):
        return fnp.sum(gelu(layernorm(x)) ** 2)

    x = _rand((8, 16))
    fn, leaves = _compile_for_gpu(fl.grad(loss), x)
    np.testing.assert_allclose(fn(x)[0], np.asarray(fl.grad(loss)(x)), rtol=1e-5, atol=1e-6)
    assert "ElementwiseKernel" in fn.source


def test_kernel_source_is_commented_in_the_generated_python():
    fn, _ = _compile_for_gpu(lambda x: fnp.tanh(x) * 2, np.ones(3, np.float32))
    assert "# ElementwiseKernel(float32 in0 -> float32 out0)" in fn.source
    assert "#   float t0 = tanhf(in0);" in fn.source


def test_kernels_are_cached_by_source():
    fn_a, _ = _compile_for_gpu(lambda x: fnp.sin(x) + 1, np.ones(3, np.float32))
    fn_b, _ = _compile_for_gpu(lambda y: fnp.sin(y) + 1, np.ones((5, 2), np.float32))
    kernels = [[v for v in fn.__globals__.values() if type(v) is FakeElementwiseKernel]
               for fn in (fn_a, fn_b)]
    assert len(kernels[0]) == 1 and kernels[0][0] is kernels[1][0]


# --------------------------------------------------------------------------------------
# Which clusters a GPU gets
# --------------------------------------------------------------------------------------
def _fused(fun, *args, policy):
    graph, _ = _graph(fun, *args)
    return [e for e in fusion.fuse(graph, policy).eqns if e.prim.name == "fused_elementwise"]


def test_small_arrays_and_two_op_chains_are_fused_for_the_gpu_only():
    x = np.ones((3, 4), np.float32)
    f = lambda x: fnp.tanh(x) * 2  # noqa: E731
    assert _fused(f, x, policy=None) == []
    (node,) = _fused(f, x, policy=fusion_gpu.POLICY)
    assert node.params["n"] == 2


def test_an_op_without_cuda_form_splits_the_cluster():
    def f(x):
        y = fnp.floor_divide(fnp.tanh(x) * 2, 3.0)
        return fnp.sin(fnp.exp(y))

    nodes = _fused(f, np.ones((4, 4), np.float32), policy=fusion_gpu.POLICY)
    names = [[e.prim.name for e in n.subgraph.eqns] for n in nodes]
    assert names == [["tanh", "multiply"], ["exp", "sin"]]
    _check_against_eager(f, _rand((4, 4)))


def test_a_cluster_without_kernel_form_runs_as_plain_calls():
    # The GPU grouping never makes one (a sum is only offered at the end of a cluster);
    # a fused node built by hand with a sum in the middle shows the fallback.
    x = Var(ShapedArray((4, 5), np.dtype(np.float32)))
    row = ShapedArray((4,), x.aval.dtype)
    a, total, b = Var(x.aval), Var(row), Var(row)
    sub = Graph([], [], [x], [Eqn(_prim("tanh")[0], [x], {}, [a]),
                              Eqn(reduce_sum_p, [a], {"axes": (1,)}, [total]),
                              Eqn(_prim("multiply")[0], [total, Literal(2.0)], {}, [b])], [b])
    assert fusion_gpu.plan(sub) is None
    outer_x, outer_b = Var(x.aval), Var(b.aval)
    node = Eqn(fusion.fused_elementwise_p, [outer_x], {"n": 3, "_inline_only": True},
               [outer_b], subgraph=sub)
    fn = Emitter(fake_cupy).compile(Graph([], [], [outer_x], [node], [outer_b]), "f")
    assert "Kernel" not in fn.source and "xp.tanh" in fn.source
    data = _rand((4, 5))
    np.testing.assert_allclose(fn(data)[0], np.tanh(data).sum(axis=1) * 2, rtol=1e-6)


def test_column_sums_are_plain_and_a_summed_output_is_read_once():
    def f(x):
        y = fnp.tanh(x) * 2
        return y, fnp.sum(y, axis=1), fnp.sum(fnp.exp(x) + 1, axis=0)

    fn = _check_against_eager(f, _rand((8, 16)), rtol=1e-5)
    assert "ReductionKernel" not in fn.source
    assert re.search(r"= v\d+\.sum\(axis=\(1,\)\)", fn.source)


def test_numpy_and_gpu_backends_are_told_apart():
    assert fusion_gpu.writes_kernels(fake_cupy)
    assert not fusion_gpu.writes_kernels(np)
