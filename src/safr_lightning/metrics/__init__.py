"""Pure tensor functions over traces: superposition metrics, deletion evaluation."""
