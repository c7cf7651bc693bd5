"""Built-in plugin of the fast diffusion solvers: DPM-Solver, DPM-Solver++, DPM-Solver-v3, the VE samplers,
the VE analytic priors and the ``restore ems`` command (issue 17)."""
from __future__ import annotations

from .hookspecs import hookimpl


@hookimpl
def restore_register_samplers(register):
    register("dpm-solver", "restore.samplers.dpm_solver:DPMSolver", requires=(),
             summary="DPM-Solver-1/2/3 (noise prediction), singlestep or multistep (Lu et al. 2022)",
             cost="1 NFE per step (multistep) / order NFE per step (singlestep); no VJP")
    register("dpm-solver++", "restore.samplers.dpm_solver_pp:DPMSolverPP", requires=(),
             summary="DPM-Solver++ 2M/3M (data prediction), SDE variant, heavy-ball momentum (Lu et al. 2022)",
             cost="1 NFE per step; no VJP")
    register("dpm-solver-v3", "restore.samplers.dpm_solver_v3:DPMSolverV3", requires=(),
             summary="DPM-Solver-v3 with empirical model statistics (`restore ems PRIOR`; Zheng et al. 2023)",
             cost="1 NFE per step; no VJP")
    register("ve-pc", "restore.samplers.ve_pc:VEPC", requires=(),
             summary="VE SDE predictor-corrector: reverse diffusion + annealed Langevin (Song et al. 2021); "
                     "VP priors converted exactly",
             cost="(1 + corrector_steps) NFE per level")
    register("ve-ode", "restore.samplers.ve_ode:VEODE", requires=(),
             summary="VE probability-flow ODE, Heun (Song et al. 2021); VP priors converted exactly",
             cost="2 NFE per step (Heun)")


@hookimpl
def restore_register_priors(register):
    register("ve-gaussian", "restore.priors.ve:VEGaussianPrior", kind="analytic-ve", channels=None,
             summary="analytic Gaussian in VE (score) form, exact scores and marginals (test oracle)")
    register("ve-gmm", "restore.priors.ve:VEGMMPrior", kind="analytic-ve", channels=None,
             summary="analytic Gaussian mixture in VE (score) form (test oracle)")


@hookimpl
def restore_register_commands(app):
    from .cli.ems import register

    register(app)
