"""xmarl: multi-agent reinforcement learning with one core and three native backends."""

from pathlib import Path

from setuptools import find_packages, setup

TORCH = ["torch==2.13.0"]
TENSORFLOW = ["tensorflow-cpu==2.21.0"]
MINDSPORE = ["mindspore==2.10.0"]
MPE = ["mpe2==1.1.1", "pygame-ce==2.5.8", "pillow==13.0.0"]  # pillow writes episode GIFs
# ray[tune] for xmarl tune; pandas and pyarrow are what it brings, pinned as CI installs them
RAY = ["ray[tune]==2.60.0", "pandas==3.1.1", "pyarrow==26.0.1"]
# experiment trackers (train.loggers): W&B, and MLflow with the SQLite store it uses by default
WANDB = ["wandb==0.31.0"]
MLFLOW = ["mlflow-skinny==3.17.2", "sqlalchemy==2.1.9", "alembic==1.20.1"]
# sphinx 9.0.4 is the newest release for Python 3.11 (9.1 needs 3.12, 9.2 needs 3.13)
# django-static-mathjax ships MathJax 3 (Apache-2.0), which docs/conf.py copies into the site: math needs no network
DOCS = ["sphinx==9.0.4", "furo==2025.12.19", "sphinx-design==0.8.0", "django-static-mathjax==3.2.2.1"]
LOGGING = ["tensorboardX==2.6.5"]
# the benchmark suites' envs (xmarl/envs/gym_tuple.py, vmas.py, magent.py); each installs beside the pins
# below without changing them (vmas also brings gym 0.26.2 and pyglet 1.5.27, which it imports)
LBF = ["lbforaging==2.0.0"]
RWARE = ["rware==2.0.0"]
VMAS = ["vmas==1.5.2"] + TORCH  # vmas requires torch unpinned: the pin keeps it from pulling another
MAGENT = ["magent2==0.3.4"]
SUITES = LBF + RWARE + VMAS + MAGENT
# exact versions CI installs (the library itself accepts the ranges in install_requires)
PINNED = ["numpy==2.4.6", "pyyaml==6.0.3", "pydantic==2.14.3", "gymnasium==1.4.0", "pettingzoo==1.27.0",
          "tqdm==4.70.1", "scipy==1.17.1", "matplotlib==3.11.2", "markdown-it-py==4.3.0"]
# tests run in two processes (pytest-xdist), build the docs, run Ray, fuzz the CLI (hypothesis) and
# step the benchmark suites; colorama is what marl-eval's data processing imports (marl-eval itself
# and rliable install with --no-deps: their pins, e.g. pandas==1.4.4, do not install beside ray[tune])
TEST = (["pytest==9.2.0", "pytest-xdist==3.8.0", "ruff==0.17.5", "hypothesis==6.170.17", "colorama==0.4.6"]
        + PINNED + MPE + LOGGING + DOCS + RAY + SUITES + WANDB + MLFLOW)

setup(
    name="xmarl",
    version="0.1.0",
    description="Multi-agent RL (COMA, MADDPG, CommNet) with native PyTorch, TensorFlow and MindSpore backends",
    long_description=Path("README.md").read_text() if Path("README.md").exists() else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["xmarl", "xmarl.*"]) + ["xmarl._configs"],
    package_dir={"xmarl._configs": "configs"},
    package_data={"xmarl._configs": ["*.yaml", "*/*.yaml", "*/*/*.yaml"], "xmarl.docschema": ["schema.yaml"]},
    install_requires=[
        "numpy>=1.26,<2.6",
        "pyyaml>=6.0",
        "pydantic>=2.7,<3",
        "gymnasium>=1.0",
        "pettingzoo>=1.25",
        "tqdm>=4.66",
        "scipy>=1.15",  # xmarl compare: IQM, permutation and Welch tests
        "matplotlib>=3.7",  # xmarl compare: learning-curve PNGs
        "markdown-it-py>=3",  # xmarl compare / report: the HTML page of a report
    ],
    extras_require={
        "torch": TORCH,
        "tensorflow": TENSORFLOW,
        "mindspore": MINDSPORE,
        "mpe": MPE,
        "ray": RAY,
        "wandb": WANDB,
        "mlflow": MLFLOW,
        "docs": DOCS,
        "lbf": LBF,
        "rware": RWARE,
        "vmas": VMAS,
        "magent": MAGENT,
        "test": TEST,
        "all": TORCH + TENSORFLOW + MINDSPORE + MPE + RAY + DOCS + LOGGING + SUITES + WANDB + MLFLOW,
    },
    entry_points={"console_scripts": ["xmarl=xmarl.cli:main"]},
)
