"""``fl.jit``: staging trace -> graph IR -> passes -> generated Python source -> cache.

* ``graph``: the IR (variables, equations, sub-graphs) and its jaxpr-like printing;
* ``staging``: the trace that records a graph, and the graph interpreter;
* ``passes``: simplification, constant folding, CSE and dead-code elimination;
* ``codegen``: a graph becomes one Python function over backend buffers;
* ``api``: ``jit``, ``make_graph``, ``disable_jit``, the cache and retrace reasons.
"""

from functorch_lite.jit.api import Jitted, Lowered, disable_jit, jit, make_graph
from functorch_lite.jit.graph import Graph

__all__ = ["jit", "make_graph", "disable_jit", "Jitted", "Lowered", "Graph"]
