/* STREAM-style memory bandwidth, per process: read (sum) and triad (a = b + s*c) over arrays
 * far larger than the caches. Run one copy per core with mpirun to measure 1 and 2 cores:
 * each rank times its own loops between barriers and rank 0 prints the aggregate bandwidth
 * (bytes moved by all ranks / slowest rank's time), median of the repetitions.
 *
 * Bytes counted as STREAM does: read = 8 B per element, triad = 24 B per element (no
 * write-allocate traffic counted). */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    const size_t n = argc > 1 ? (size_t)atol(argv[1]) : 40u * 1000 * 1000; /* 320 MB per array */
    const int reps = argc > 2 ? atoi(argv[2]) : 10;
    double *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b), *c = malloc(n * sizeof *c);
    for (size_t i = 0; i < n; i++) { a[i] = 1.0; b[i] = 2.0; c[i] = 0.5; }
    double read_s[64], triad_s[64], sink = 0.0;
    for (int r = 0; r < reps && r < 64; r++) {
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime(), s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        for (size_t i = 0; i + 3 < n; i += 4) { s0 += b[i]; s1 += b[i + 1]; s2 += b[i + 2]; s3 += b[i + 3]; }
        double t1 = MPI_Wtime();
        sink += s0 + s1 + s2 + s3;
        MPI_Barrier(MPI_COMM_WORLD);
        double t2 = MPI_Wtime();
        for (size_t i = 0; i < n; i++) a[i] = b[i] + 3.0 * c[i];
        double t3 = MPI_Wtime();
        double local[2] = {t1 - t0, t3 - t2}, slowest[2];
        MPI_Reduce(local, slowest, 2, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
        read_s[r] = slowest[0];
        triad_s[r] = slowest[1];
    }
    if (rank == 0) {
        int k = reps < 64 ? reps : 64;
        qsort(read_s, k, sizeof(double), cmp);
        qsort(triad_s, k, sizeof(double), cmp);
        double read_gbs = 8.0 * n * size / read_s[k / 2] / 1e9;
        double triad_gbs = 24.0 * n * size / triad_s[k / 2] / 1e9;
        printf("stream ranks=%d read_GBps=%.2f triad_GBps=%.2f (sink %g)\n", size, read_gbs, triad_gbs,
               sink + a[n / 2]);
    }
    free(a); free(b); free(c);
    MPI_Finalize();
    return 0;
}
