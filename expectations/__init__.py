"""The rules: Great Expectations suites, the packaged default suite, and the compiler to row rules."""
from expectations.compiler import SUPPORTED, CompiledSuite, CompileOptions, compile_suite
from expectations.suite import Expectation, Suite, default_suite, load_suite, parse_suite

__all__ = ["SUPPORTED", "CompileOptions", "CompiledSuite", "Expectation", "Suite", "compile_suite",
           "default_suite", "load_suite", "parse_suite"]
