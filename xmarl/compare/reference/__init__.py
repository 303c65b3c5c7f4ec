"""Verification code, beside the core rather than inside it: numpy references of each method's
quantities, the numpy optimiser, synthetic inputs, and the parity cases every backend is run on
(registered as ``("parity", <method>)``, see :mod:`xmarl.compare.parity`). Importing this
package registers the built-in methods' cases."""

from xmarl.compare.reference import bicnet, coma, commnet, maddpg  # noqa: F401
