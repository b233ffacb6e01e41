#!/usr/bin/env python3
"""Writes th_reference.txt: for 10,000 ratios, the `th` the OpenTelemetry specification's reference algorithm
(trace/tracestate-probability-sampling.md, `probability_to_threshold_with_precision`, copied below unchanged) gives
at precision 4 (the default) and 12, or `-` for a ratio below 2^-56. The ratios come from splitmix64 with seed 26,
exact in both languages: m = (x >> 11) + 1, k = x % 57, ratio = m * 2^(-53 - k). The Rust test regenerates them.
Run: python3 th_reference.py > th_reference.txt"""
import math

def probability_to_threshold_with_precision(probability, precision):
    if probability == 1:
        return "0"
    _, exp = math.frexp(probability)
    precision = max(1, min(12, precision + exp // -4))
    rejection_prob = 2 - probability
    rejection_prob += math.ldexp(0.5, -4 * precision)
    if rejection_prob >= 2.0:
        digits = "fffffffffffff"
    else:
        digits = rejection_prob.hex()[4:][:-3]
    return digits[:precision].rstrip('0')

MASK = (1 << 64) - 1
state = 26

def splitmix64():
    global state
    state = (state + 0x9E3779B97F4A7C15) & MASK
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)

for _ in range(10000):
    x = splitmix64()
    ratio = math.ldexp(float((x >> 11) + 1), -53 - (x % 57))
    if ratio < 2.0 ** -56:
        print("-")
    else:
        # An empty result (a ratio so near 1 that every kept digit is 0) is threshold 0.
        print(" ".join(probability_to_threshold_with_precision(ratio, p) or "0" for p in (4, 12)))
