/* Single-thread GEMM peak: C = A B on square n x n matrices (default 2048), f64 and f32,
 * through the same OpenBLAS mpi-sgd links. Prints the median GFLOP/s of the repetitions
 * (2 n^3 flops per product). Run with OPENBLAS_NUM_THREADS=1. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    const int n = argc > 1 ? atoi(argv[1]) : 2048, reps = 5;
    double *a = malloc(sizeof(double) * n * n), *b = malloc(sizeof(double) * n * n),
           *c = malloc(sizeof(double) * n * n), t[reps];
    float *fa = malloc(sizeof(float) * n * n), *fb = malloc(sizeof(float) * n * n),
          *fc = malloc(sizeof(float) * n * n);
    for (long i = 0; i < (long)n * n; i++) a[i] = b[i] = fa[i] = fb[i] = 1.0 / (1 + i % 7);
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
        t[r] = now() - t0;
    }
    qsort(t, reps, sizeof(double), cmp);
    printf("gemm n=%d dtype=f64 gflops=%.2f\n", n, 2.0 * n * n * n / t[reps / 2] / 1e9);
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, fa, n, fb, n, 0, fc, n);
        t[r] = now() - t0;
    }
    qsort(t, reps, sizeof(double), cmp);
    printf("gemm n=%d dtype=f32 gflops=%.2f\n", n, 2.0 * n * n * n / t[reps / 2] / 1e9);
    return c[1] + fc[1] > 0 ? 0 : 1;
}
