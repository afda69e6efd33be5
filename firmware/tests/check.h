/* Minimal test macros for the host unit tests of the firmware core.  BSD-3-Clause. */
#ifndef DOPA_CHECK_H
#define DOPA_CHECK_H
#include <stdio.h>

static int g_checks, g_failures;

#define CHECK(cond) do { g_checks++; if (!(cond)) { g_failures++; \
    fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); } } while (0)
#define CHECK_EQ(a, b) do { long long a_ = (long long)(a), b_ = (long long)(b); g_checks++; if (a_ != b_) { \
    g_failures++; fprintf(stderr, "%s:%d: %s == %lld, expected %s == %lld\n", __FILE__, __LINE__, #a, a_, #b, b_); } } while (0)
#define RUN(test) do { int f_ = g_failures; test(); printf("%-40s %s\n", #test, f_ == g_failures ? "ok" : "FAILED"); } while (0)
#define REPORT(name) (printf("%s: %d checks, %d failed\n", name, g_checks, g_failures), g_failures ? 1 : 0)

#endif
