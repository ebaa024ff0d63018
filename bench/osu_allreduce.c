/* A minimal OSU-style MPI_Allreduce latency loop (after osu_allreduce of the OSU
 * micro-benchmarks), the outside reference for `mpi-sgd bench-allreduce`'s `mpi` numbers.
 *
 * For each size (doubles, 8 B .. max bytes, doubling): warm-up calls, a barrier, then the timed
 * loop as one interval; a rank's latency is the interval / iterations. Iterations per size
 * follow mpi-sgd's default (1000 up to 64 KiB, then 64 MiB / size, at least 10), warm-up a
 * tenth of that (at least 2). Prints size, min / avg / max over ranks, in microseconds. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    long max_bytes = argc > 1 ? atol(argv[1]) : 64L << 20;
    double *send = malloc(max_bytes), *recv = malloc(max_bytes);
    for (long i = 0; i < max_bytes / 8; i++) send[i] = (double)((rank + i) % 17);
    if (rank == 0) printf("# osu-style MPI_Allreduce, %d ranks, double\n#%9s %11s %11s %11s\n", size, "bytes", "min_us", "avg_us", "max_us");
    for (long bytes = 8; bytes <= max_bytes; bytes *= 2) {
        long iterations = (64L << 20) / bytes;
        iterations = iterations < 10 ? 10 : iterations > 1000 ? 1000 : iterations;
        long warmup = iterations / 10 < 2 ? 2 : iterations / 10;
        int count = (int)(bytes / 8);
        for (long i = 0; i < warmup; i++) MPI_Allreduce(send, recv, count, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
        MPI_Barrier(MPI_COMM_WORLD);
        double begin = MPI_Wtime();
        for (long i = 0; i < iterations; i++) MPI_Allreduce(send, recv, count, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
        double latency = (MPI_Wtime() - begin) / iterations * 1e6, lo, hi, sum;
        MPI_Reduce(&latency, &lo, 1, MPI_DOUBLE, MPI_MIN, 0, MPI_COMM_WORLD);
        MPI_Reduce(&latency, &hi, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
        MPI_Reduce(&latency, &sum, 1, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD);
        if (rank == 0) printf("%10ld %11.2f %11.2f %11.2f\n", bytes, lo, sum / size, hi);
    }
    free(send);
    free(recv);
    MPI_Finalize();
    return 0;
}
