// Open MPI's MPI_Allreduce measured exactly like allreduce_bench (same sizes, iterations,
// slowest-rank time), as the performance peer. Run under mpirun -np RANKS.
#include <mpi.h>

#include <algorithm>
#include <vector>

#include "tests/bench/parallel/bench_common.h"

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  for (size_t bytes : sparkstack::bench::AllReduceSizes()) {
    std::vector<float> data(bytes / 4, 1.0f);
    const int count = static_cast<int>(data.size());
    for (int i = 0; i < sparkstack::bench::Warmup(bytes); ++i) {
      MPI_Allreduce(MPI_IN_PLACE, data.data(), count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    const int iters = sparkstack::bench::Iterations(bytes);
    const double start = MPI_Wtime();
    for (int i = 0; i < iters; ++i) {
      MPI_Allreduce(MPI_IN_PLACE, data.data(), count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    }
    double seconds = MPI_Wtime() - start, slowest = 0;
    MPI_Reduce(&seconds, &slowest, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
    if (rank == 0) sparkstack::bench::PrintResult("openmpi", size, bytes, slowest / iters);
  }
  MPI_Finalize();
  return 0;
}
