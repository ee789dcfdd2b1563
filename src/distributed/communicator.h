#pragma once
// The ranks of a job started by an MPI launcher (mpirun, srun) and the few operations that
// data-parallel training and distributed sweeps need. MPI stays behind this header: a build without
// MPI, or a process started without a launcher, gets a communicator of one rank whose operations
// leave their inputs as they are, so that callers use it unconditionally.
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace sinklab {

// What the launcher tells a process in its environment, read before MPI starts: mpirun
// (OMPI_COMM_WORLD_RANK/SIZE), PMIx (PMIX_RANK), Hydra or PMI-2 (PMI_RANK/SIZE), Slurm's srun
// (SLURM_PROCID, SLURM_STEP_NUM_TASKS). size is 0 when a launcher started the process without saying
// how many ranks it started (PMIx alone).
struct LaunchInfo {
    int rank = 0;
    int size = 1;
    bool launched = false;  // an MPI launcher started this process
};
LaunchInfo launch_info();

// Whether this build has MPI (CMake found it; scripts/setup.sh installs OpenMPI).
bool mpi_available();

// An error that every rank of a communicator throws at the same point (Communicator::agree): rank 0
// alone prints it, and every rank ends normally with a non-zero exit instead of aborting the job.
class AgreedError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class Communicator {
public:
    // One rank, alone.
    Communicator();

    int rank() const;
    int size() const;
    bool is_root() const { return rank() == 0; }
    bool distributed() const { return size() > 1; }
    // The part [first, last) of n items that this rank takes when they are split into contiguous,
    // nearly equal shares in rank order.
    std::pair<size_t, size_t> share(size_t n) const;

    // In place: every rank ends with the element-wise sum over the ranks.
    void allreduce_sum(double* values, size_t n) const;
    void allreduce_sum(float* values, size_t n) const;
    // Every rank ends with root's bytes.
    void broadcast(void* bytes, size_t n, int root = 0) const;
    template <typename T>
    T broadcast(T value, int root = 0) const {
        static_assert(std::is_trivially_copyable_v<T>);
        broadcast(&value, sizeof value, root);
        return value;
    }
    std::string broadcast(std::string text, int root = 0) const;
    // Root gets every rank's values concatenated in rank order; the other ranks get nothing.
    std::vector<float> gather(const std::vector<float>& values) const;
    // Whether every rank passed the same value.
    bool same_on_all_ranks(uint64_t value) const;
    void barrier() const;

    // The ranks that pass the same colour, in rank order (a collective over this communicator).
    Communicator split(int colour) const;
    // The same ranks with a channel of their own, so that messages on it never meet the collectives
    // of this one.
    Communicator duplicate() const;

    // Messages between two ranks (the sweep's scheduler). A message from any rank with this tag, when
    // one has arrived: (sender, text). Never blocks.
    std::optional<std::pair<int, std::string>> poll(int tag) const;
    void send(const std::string& text, int to, int tag) const;
    std::string receive(int from, int tag) const;  // blocks until it arrives

    // Runs `work` on every rank; when it throws on any rank, every rank throws one AgreedError with
    // the message of the lowest rank that failed, naming the rank when it is not 0 ("[data] rank 1 of 2
    // (host): ...").
    // The setup of a distributed command runs through it, so that a failure on one rank (a data file
    // missing on its machine) ends every rank with one line instead of leaving the others waiting.
    // Collective. On one rank, `work` runs as it is and its exceptions pass unchanged.
    template <typename Work>
    auto agree(Work&& work) const -> decltype(work()) {
        using Result = decltype(work());
        if (!distributed()) return work();
        std::exception_ptr failure;
        if constexpr (std::is_void_v<Result>) {
            try {
                work();
            } catch (...) {
                failure = std::current_exception();
            }
            settle(failure);
        } else {
            std::optional<Result> result;
            try {
                result.emplace(work());
            } catch (...) {
                failure = std::current_exception();
            }
            settle(failure);
            return std::move(*result);
        }
    }

    struct State;  // the MPI communicator, or nothing for one rank (communicator.cpp)
    explicit Communicator(std::shared_ptr<const State> state);
    const State& state() const { return *state_; }

private:
    // Collective: throws AgreedError on every rank when `failure` is set on any.
    void settle(const std::exception_ptr& failure) const;
    std::shared_ptr<const State> state_;
};

// The job: its communicator over every rank. Started once per process, by the commands that run
// distributed (train, sweep): MPI starts when a launcher started this process, otherwise the job
// is one rank and MPI is never touched. `threads_use_mpi`: threads other than the main one call MPI
// while it does (MPI_THREAD_MULTIPLE). Throws AgreedError when a launcher started several ranks of
// a build without MPI, or when each rank finds itself alone (srun without an MPI plugin).
const Communicator& start_job(bool threads_use_mpi = false);
// The job's communicator once started; one rank before.
const Communicator& job();
// The job's ranks on this machine (1 before the job starts).
int job_local_ranks();
// Threads for a rank when the user chose none: 0 (all cores) for a job of one rank; otherwise the
// cores of this machine divided among the job's ranks on it, and never more than the cores this
// process may run on (a launcher that binds each rank to its cores has already divided them).
int default_threads_per_rank();
// After the command: MPI_Finalize when MPI was started (main calls it on every exit path that is not
// an abort).
void end_job();
// Ends every rank of the job now (MPI_Abort), after a failure on this rank alone that the others,
// waiting in a collective, cannot learn of.
[[noreturn]] void abort_job(int exit_code);

// Averages a float buffer over the ranks of a communicator in buckets: the owner says which parts of
// the buffer are final as it computes them, and each bucket of bucket_bytes starts its all-reduce
// (MPI_Iallreduce) at once, so that the reduction of the parts computed first overlaps the
// computation of the rest. bucket_bytes 0: one blocking all-reduce of the whole buffer in finish().
class BucketedAverage {
public:
    BucketedAverage(Communicator ranks, size_t bucket_bytes);
    ~BucketedAverage();
    BucketedAverage(const BucketedAverage&) = delete;
    BucketedAverage& operator=(const BucketedAverage&) = delete;

    // A new round over data[0, n).
    void begin(float* data, size_t n);
    // data[first, last) is final. Parts arrive from the end of the buffer towards its start, each
    // ending where the previous one began.
    void ready(size_t first, size_t last);
    // Every part ready: waits for the reductions; data holds the mean over the ranks.
    void finish();

    const Communicator& ranks() const { return ranks_; }
    // Seconds spent in MPI calls by the rounds so far (starting, advancing and waiting for
    // reductions), and the bytes each rank contributed.
    double seconds() const { return seconds_; }
    double bytes() const { return bytes_; }

private:
    void start_bucket(size_t first, size_t last);
    void advance();
    Communicator ranks_;
    size_t bucket_elements_;
    float* data_ = nullptr;
    size_t n_ = 0;
    size_t pending_first_ = 0, pending_last_ = 0;  // ready, not yet started: [pending_first_, pending_last_)
    struct Requests;
    std::unique_ptr<Requests> requests_;
    double seconds_ = 0.0, bytes_ = 0.0;
};

}  // namespace sinklab
