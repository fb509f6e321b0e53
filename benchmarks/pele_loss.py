"""The [2,10,4] loss as a pele potential (NumPy only), for the pele comparison scripts."""

from pele.potentials import BasePotential

from potential_throughput_numpy import numpy_value_and_grad


class Loss(BasePotential):
    def __init__(self, X, y, lam):
        self.X, self.y, self.lam = X, y, lam

    def getEnergy(self, w):
        return numpy_value_and_grad(w, self.X, self.y, (2, 10, 4), self.lam)[0]

    def getEnergyGradient(self, w):
        return numpy_value_and_grad(w, self.X, self.y, (2, 10, 4), self.lam)
