"""Packaging for pulsarflow.

The Avro schemas in ``schemas/`` ship as ``pulsarflow/_schemas`` and the Pulsar Function
entry points in ``functions/`` as ``pulsarflow/_functions``, so an installed wheel has all
that ``pulsarflow deploy`` packages; ``pulsarflow init`` copies ``pulsarflow/templates``.
"""

from pathlib import Path

from setuptools import find_packages, setup

setup(
    name="pulsarflow",
    version="0.4.0",
    description="Durable workflows as plain Python code, with engines running as Apache Pulsar Functions",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["pulsarflow", "pulsarflow.*"]) + [
        "pulsarflow._schemas", "pulsarflow._schemas.history", "pulsarflow._functions",
    ],
    package_dir={"pulsarflow._schemas": "schemas", "pulsarflow._functions": "functions"},
    package_data={"pulsarflow._schemas": ["*.avsc", "history/*/*.avsc"], "pulsarflow.dashboard": ["static/*"],
                  "pulsarflow.templates": ["app/*", "app/*/*"]},
    install_requires=["fastavro>=1.9,<2"],
    extras_require={
        "pulsar": ["pulsar-client>=3.8", "requests>=2.28", "pyyaml>=6"],
        "redis": ["redis>=5"],
        "crypto": ["cryptography>=42"],
        "s3": ["boto3>=1.28"],  # pulsarflow.payload_s3.S3Store (a claim-check store on S3 or a compatible server)
        "otel": ["opentelemetry-api>=1.20"],
        "test": ["pytest>=8", "hypothesis>=6.100", "pydantic>=2", "selenium>=4.20", "cryptography>=42",
                 "opentelemetry-api>=1.20", "opentelemetry-sdk>=1.20",
                 "boto3>=1.28", "moto[server]>=5"],  # S3Store's tests run moto's S3 server on 127.0.0.1
        "dev": ["ruff>=0.6", "mypy>=1.10", "py-spy>=0.4"],  # py-spy: bench.profile_pulsar
    },
    entry_points={"console_scripts": ["pulsarflow=pulsarflow.cli:run"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: System :: Distributed Computing",
    ],
)
