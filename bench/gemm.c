/* Single-thread GEMM rates through the OpenBLAS mpi-sgd links (run with OPENBLAS_NUM_THREADS=1):
 * - the peak: square n x n products (n = 2048);
 * - the products of one MLP training step (--hidden 512, 20 features, 10 classes, 8192 rows,
 *   row-major as mpi-sgd calls them): forward A W, weight gradient A^T D, input gradient D W^T.
 * Prints the median GFLOP/s of the repetitions, 2 m n k flops per product, f64 and f32. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

enum { REPS = 7 };

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* C [m, n] = op(A) op(B) with op(A) [m, k], op(B) [k, n], all row-major. */
static double rate(int f32, int ta, int tb, int m, int n, int k) {
    size_t big = (size_t)(m > k ? m : k) * (size_t)(n > k ? n : k);
    void *a = calloc(big, 8), *b = calloc(big, 8), *c = calloc(big, 8);
    double t[REPS];
    for (int r = 0; r < REPS; r++) {
        double t0 = now();
        CBLAS_TRANSPOSE opa = ta ? CblasTrans : CblasNoTrans, opb = tb ? CblasTrans : CblasNoTrans;
        int lda = ta ? m : k, ldb = tb ? k : n;
        if (f32)
            cblas_sgemm(CblasRowMajor, opa, opb, m, n, k, 1, a, lda, b, ldb, 0, c, n);
        else
            cblas_dgemm(CblasRowMajor, opa, opb, m, n, k, 1, a, lda, b, ldb, 0, c, n);
        t[r] = now() - t0;
    }
    free(a), free(b), free(c);
    qsort(t, REPS, sizeof(double), cmp);
    return 2.0 * m * n * k / t[REPS / 2] / 1e9;
}

int main(void) {
    const int rows = 8192, d = 20, h = 512, classes = 10, n = 2048;
    for (int f32 = 0; f32 <= 1; f32++) {
        const char *dtype = f32 ? "f32" : "f64";
        printf("gemm shape=peak dtype=%s gflops=%.2f\n", dtype, rate(f32, 0, 0, n, n, n));
        printf("gemm shape=fwd1 dtype=%s gflops=%.2f\n", dtype, rate(f32, 0, 0, rows, h, d));
        printf("gemm shape=fwd2 dtype=%s gflops=%.2f\n", dtype, rate(f32, 0, 0, rows, classes, h));
        printf("gemm shape=dW1 dtype=%s gflops=%.2f\n", dtype, rate(f32, 1, 0, d, h, rows));
        printf("gemm shape=dW2 dtype=%s gflops=%.2f\n", dtype, rate(f32, 1, 0, h, classes, rows));
        printf("gemm shape=dA1 dtype=%s gflops=%.2f\n", dtype, rate(f32, 0, 1, rows, h, classes));
    }
    return 0;
}
