"""The DSO's flexibility market: products, baselines, pricing schedules, awards, and clearing
jointly with the energy market."""
