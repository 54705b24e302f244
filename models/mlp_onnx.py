"""Write a small dense ReLU network as an ONNX graph (used by train_*.py)."""

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8  # readable by onnxruntime 1.14 and later


class GraphParts:
    """Nodes and constant tensors collected while building one graph."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.constants: list[onnx.TensorProto] = []

    def node(self, op: str, inputs: list[str], output: str) -> str:
        """Append a node and return its output name."""
        self.nodes.append(helper.make_node(op, inputs, [output]))
        return output

    def constant(self, name: str, value: np.ndarray) -> str:
        """Add a constant tensor and return its name."""
        self.constants.append(numpy_helper.from_array(value, name))
        return name


def export_residual_mlp(layers: list, context: int, path: str) -> None:
    """Save a forecaster scoring |last input - forecast from the others|."""
    parts = GraphParts()
    axis = parts.constant("axis1", np.array([1], dtype=np.int64))
    bounds = [np.array([b], dtype=np.int64) for b in (0, context, context + 1)]
    start, middle, end = (parts.constant(f"col{b[0]}", b) for b in bounds)
    context_in = parts.node("Slice", ["window", start, middle, axis], "context")
    current = parts.node("Slice", ["window", middle, end, axis], "current")
    forecast = _dense_chain(parts, context_in, layers)
    error = parts.node("Sub", [current, forecast], "error")
    absolute = parts.node("Abs", [error], "abs_error")
    parts.node("Squeeze", [absolute, axis], "score")
    doc = "anomaly score: |current - MLP forecast| in robust units"
    _save(parts, ("window", context + 1), "score", path, doc)


def export_sigmoid_mlp(layers: list, path: str, input_name: str, doc: str) -> None:
    """Save a classifier returning the sigmoid of its single logit."""
    parts = GraphParts()
    axis = parts.constant("axis1", np.array([1], dtype=np.int64))
    logit = _dense_chain(parts, input_name, layers)
    probability = parts.node("Sigmoid", [logit], "probability_2d")
    parts.node("Squeeze", [probability, axis], "probability")
    _save(parts, (input_name, layers[0][0].shape[0]), "probability", path, doc)


def _dense_chain(parts: GraphParts, source: str, layers: list) -> str:
    """Append Gemm (and ReLU between layers); return the last output name."""
    current = source
    for index, (weight, bias) in enumerate(layers):
        w = parts.constant(f"w{index}", np.asarray(weight, dtype=np.float32))
        b = parts.constant(f"b{index}", np.asarray(bias, dtype=np.float32))
        current = parts.node("Gemm", [current, w, b], f"dense{index}")
        if index < len(layers) - 1:
            current = parts.node("Relu", [current], f"relu{index}")
    return current


def _save(parts: GraphParts, source: tuple, output: str, path: str, doc: str) -> None:
    """Check and write the model with a fixed opset and producer."""
    name, width = source
    graph = helper.make_graph(
        parts.nodes,
        "koprogo",
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["n", width])],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, ["n"])],
        initializer=parts.constants,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="koprogo-node",
        doc_string=doc,
    )
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    with open(path, "wb") as handle:
        handle.write(model.SerializeToString())
