"""The engine: layers, activations, losses, initialisers, the network over one flat parameter
array, optimisers, schedules, preprocessing and metrics. It imports nothing else of loomnet."""
