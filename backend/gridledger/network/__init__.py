"""The distribution network: model and limits, power-flow validation, network-aware clearing."""
