"""Mathematics of the mean-field theory: model spec, nonlinearities, ψ(g), closed forms, observables."""
