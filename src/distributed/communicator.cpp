#include "distributed/communicator.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "core/error.h"

#ifdef SINKLAB_WITH_MPI
#include <mpi.h>
#endif

namespace sinklab {

namespace {

std::optional<int> env_int(const char* name) {
    const char* value = std::getenv(name);
    if (!value || !*value) return std::nullopt;
    char* end = nullptr;
    const long parsed = std::strtol(value, &end, 10);
    if (*end != '\0' || parsed < 0 || parsed > 1 << 30) return std::nullopt;
    return static_cast<int>(parsed);
}

std::string host_name() {
    char name[256] = {};
    if (::gethostname(name, sizeof name - 1) != 0) return "unknown host";
    return name;
}

#ifdef SINKLAB_WITH_MPI  // used only where there are ranks to wait for or to tell
double now_seconds() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string message_of(const std::exception_ptr& failure) {
    try {
        std::rethrow_exception(failure);
    } catch (const std::exception& e) {
        return e.what();
    } catch (...) {
        return "an unknown error";
    }
}
#endif

}  // namespace

LaunchInfo launch_info() {
    LaunchInfo info;
    // The MPI launchers first: they say what MPI will see. Slurm's variables alone mean srun started
    // the tasks, which MPI then joins through its PMI plugin.
    const std::optional<int> ompi_rank = env_int("OMPI_COMM_WORLD_RANK"), ompi_size = env_int("OMPI_COMM_WORLD_SIZE");
    const std::optional<int> pmix_rank = env_int("PMIX_RANK");
    const std::optional<int> pmi_rank = env_int("PMI_RANK"), pmi_size = env_int("PMI_SIZE");
    const std::optional<int> slurm_rank = env_int("SLURM_PROCID"), slurm_size = env_int("SLURM_STEP_NUM_TASKS");
    if (ompi_rank && ompi_size) {
        info = {*ompi_rank, *ompi_size, true};
    } else if (pmi_rank && pmi_size) {
        info = {*pmi_rank, *pmi_size, true};
    } else if (pmix_rank) {
        info = {*pmix_rank, slurm_size.value_or(0), true};
    } else if (slurm_rank && slurm_size && *slurm_size > 1) {
        info = {*slurm_rank, *slurm_size, true};
    }
    return info;
}

#ifdef SINKLAB_WITH_MPI
bool mpi_available() { return true; }
#else
bool mpi_available() { return false; }
#endif

// ---------------------------------------------------------------------------------------------
// The communicator's state: an MPI communicator, or nothing for one rank.

struct Communicator::State {
    int rank = 0;
    int size = 1;
    std::string host = host_name();
#ifdef SINKLAB_WITH_MPI
    MPI_Comm comm = MPI_COMM_NULL;
    bool owned = false;  // made by split or duplicate: freed with the state, unless MPI has ended
    ~State() {
        int finalized = 0;
        MPI_Finalized(&finalized);
        if (owned && !finalized) MPI_Comm_free(&comm);
    }
#endif
};

Communicator::Communicator() : state_(std::make_shared<State>()) {}
Communicator::Communicator(std::shared_ptr<const State> state) : state_(std::move(state)) {}

int Communicator::rank() const { return state_->rank; }
int Communicator::size() const { return state_->size; }

std::pair<size_t, size_t> Communicator::share(size_t n) const {
    const auto r = static_cast<unsigned __int128>(rank()), s = static_cast<unsigned __int128>(size());
    return {static_cast<size_t>(n * r / s), static_cast<size_t>(n * (r + 1) / s)};
}

#ifdef SINKLAB_WITH_MPI

namespace {

// MPI counts are ints: buffers are reduced in pieces of at most this many elements.
constexpr size_t kMaxCount = size_t{1} << 30;

MPI_Comm comm_of(const Communicator& c) { return c.state().comm; }

std::shared_ptr<const Communicator::State> wrap(MPI_Comm comm, bool owned) {
    auto state = std::make_shared<Communicator::State>();
    state->comm = comm;
    state->owned = owned;
    MPI_Comm_rank(comm, &state->rank);
    MPI_Comm_size(comm, &state->size);
    return state;
}

}  // namespace

void Communicator::allreduce_sum(double* values, size_t n) const {
    if (!distributed()) return;
    for (size_t done = 0; done < n; done += kMaxCount)
        MPI_Allreduce(MPI_IN_PLACE, values + done, static_cast<int>(std::min(kMaxCount, n - done)), MPI_DOUBLE, MPI_SUM,
                      comm_of(*this));
}

void Communicator::allreduce_sum(float* values, size_t n) const {
    if (!distributed()) return;
    for (size_t done = 0; done < n; done += kMaxCount)
        MPI_Allreduce(MPI_IN_PLACE, values + done, static_cast<int>(std::min(kMaxCount, n - done)), MPI_FLOAT, MPI_SUM,
                      comm_of(*this));
}

void Communicator::broadcast(void* bytes, size_t n, int root) const {
    if (!distributed()) return;
    SINKLAB_ASSERT(n <= kMaxCount);
    MPI_Bcast(bytes, static_cast<int>(n), MPI_BYTE, root, comm_of(*this));
}

std::string Communicator::broadcast(std::string text, int root) const {
    if (!distributed()) return text;
    size_t length = broadcast(text.size(), root);
    text.resize(length);
    broadcast(text.data(), length, root);
    return text;
}

std::vector<float> Communicator::gather(const std::vector<float>& values) const {
    if (!distributed()) return values;
    SINKLAB_ASSERT(values.size() <= kMaxCount);
    const int mine = static_cast<int>(values.size());
    std::vector<int> counts(is_root() ? size() : 0), offsets(counts.size());
    MPI_Gather(&mine, 1, MPI_INT, counts.data(), 1, MPI_INT, 0, comm_of(*this));
    std::vector<float> all;
    if (is_root()) {
        long total = 0;
        for (int r = 0; r < size(); ++r) {
            offsets[r] = static_cast<int>(total);
            total += counts[r];
        }
        SINKLAB_ASSERT(total <= static_cast<long>(kMaxCount));
        all.resize(static_cast<size_t>(total));
    }
    MPI_Gatherv(values.data(), mine, MPI_FLOAT, all.data(), counts.data(), offsets.data(), MPI_FLOAT, 0,
                comm_of(*this));
    return all;
}

bool Communicator::same_on_all_ranks(uint64_t value) const {
    if (!distributed()) return true;
    uint64_t low = value, high = value;
    MPI_Allreduce(MPI_IN_PLACE, &low, 1, MPI_UINT64_T, MPI_MIN, comm_of(*this));
    MPI_Allreduce(MPI_IN_PLACE, &high, 1, MPI_UINT64_T, MPI_MAX, comm_of(*this));
    return low == high;
}

void Communicator::barrier() const {
    if (distributed()) MPI_Barrier(comm_of(*this));
}

Communicator Communicator::split(int colour) const {
    if (!distributed()) return *this;
    MPI_Comm part;
    MPI_Comm_split(comm_of(*this), colour, rank(), &part);
    return Communicator(wrap(part, true));
}

Communicator Communicator::duplicate() const {
    if (!distributed()) return *this;
    MPI_Comm copy;
    MPI_Comm_dup(comm_of(*this), &copy);
    return Communicator(wrap(copy, true));
}

std::optional<std::pair<int, std::string>> Communicator::poll(int tag) const {
    if (!distributed()) return std::nullopt;
    int arrived = 0;
    MPI_Status status;
    MPI_Iprobe(MPI_ANY_SOURCE, tag, comm_of(*this), &arrived, &status);
    if (!arrived) return std::nullopt;
    int length = 0;
    MPI_Get_count(&status, MPI_CHAR, &length);
    std::string text(static_cast<size_t>(length), '\0');
    MPI_Recv(text.data(), length, MPI_CHAR, status.MPI_SOURCE, tag, comm_of(*this), MPI_STATUS_IGNORE);
    return std::make_pair(status.MPI_SOURCE, std::move(text));
}

void Communicator::send(const std::string& text, int to, int tag) const {
    SINKLAB_ASSERT(distributed() && text.size() <= kMaxCount);
    MPI_Send(text.data(), static_cast<int>(text.size()), MPI_CHAR, to, tag, comm_of(*this));
}

std::string Communicator::receive(int from, int tag) const {
    SINKLAB_ASSERT(distributed());
    MPI_Status status;
    MPI_Probe(from, tag, comm_of(*this), &status);
    int length = 0;
    MPI_Get_count(&status, MPI_CHAR, &length);
    std::string text(static_cast<size_t>(length), '\0');
    MPI_Recv(text.data(), length, MPI_CHAR, from, tag, comm_of(*this), MPI_STATUS_IGNORE);
    return text;
}

void Communicator::settle(const std::exception_ptr& failure) const {
    int first = failure ? rank() : size(), failed = failure ? 1 : 0;
    MPI_Allreduce(MPI_IN_PLACE, &first, 1, MPI_INT, MPI_MIN, comm_of(*this));
    if (first == size()) return;
    MPI_Allreduce(MPI_IN_PLACE, &failed, 1, MPI_INT, MPI_SUM, comm_of(*this));
    std::string message;
    if (rank() == first) {
        message = message_of(failure);
        if (first != 0) {  // after the module's tag, when it has one: "[data] rank 1 of 2 (host): ..."
            const size_t tag = message.starts_with('[') ? message.find("] ") : std::string::npos;
            const size_t at = tag == std::string::npos ? 0 : tag + 2;
            message.insert(at, fmt::format("rank {} of {} ({}): ", first, size(), state_->host));
        }
    }
    message = broadcast(message, first);
    if (failed > 1 && failed < size()) message += fmt::format(" ({} of the {} ranks failed)", failed, size());
    throw AgreedError(message);
}

#else  // one rank, no MPI: nothing to exchange

void Communicator::allreduce_sum(double*, size_t) const {}
void Communicator::allreduce_sum(float*, size_t) const {}
void Communicator::broadcast(void*, size_t, int) const {}
std::string Communicator::broadcast(std::string text, int) const { return text; }
std::vector<float> Communicator::gather(const std::vector<float>& values) const { return values; }
bool Communicator::same_on_all_ranks(uint64_t) const { return true; }
void Communicator::barrier() const {}
Communicator Communicator::split(int) const { return *this; }
Communicator Communicator::duplicate() const { return *this; }
std::optional<std::pair<int, std::string>> Communicator::poll(int) const { return std::nullopt; }
void Communicator::send(const std::string&, int, int) const { fail("internal", "send on a communicator of one rank"); }
std::string Communicator::receive(int, int) const { fail("internal", "receive on a communicator of one rank"); }
void Communicator::settle(const std::exception_ptr& failure) const {
    if (failure) std::rethrow_exception(failure);
}

#endif

// ---------------------------------------------------------------------------------------------
// The job.

namespace {

struct Job {
    bool started = false;
    bool mpi = false;  // MPI_Init_thread was called
    Communicator world;
    int local_ranks = 1;
};

Job& the_job() {
    static Job job;
    return job;
}

}  // namespace

const Communicator& start_job(bool threads_use_mpi) {
    Job& j = the_job();
    if (j.started) return j.world;
    j.started = true;
    const LaunchInfo launch = launch_info();
    if (!launch.launched || launch.size == 1) return j.world;
#ifdef SINKLAB_WITH_MPI
    const int wanted = threads_use_mpi ? MPI_THREAD_MULTIPLE : MPI_THREAD_FUNNELED;
    int provided = MPI_THREAD_SINGLE;
    MPI_Init_thread(nullptr, nullptr, wanted, &provided);
    j.mpi = true;
    j.world = Communicator(wrap(MPI_COMM_WORLD, false));
    MPI_Comm local;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local);
    MPI_Comm_size(local, &j.local_ranks);
    MPI_Comm_free(&local);
    if (launch.size > 1 && j.world.size() == 1)
        throw AgreedError(fmt::format(
            "the launcher started {} processes, but MPI sees each as a job of one rank, so each would train on its "
            "own: under Slurm, start them with `srun --mpi=pmix` (docs/scale-out.md)",
            launch.size));
    if (provided < wanted)
        throw AgreedError(fmt::format("this MPI library offers thread level {} where {} is needed ({}); use an MPI "
                                      "built with thread support (Debian's OpenMPI has it)",
                                      provided, wanted, threads_use_mpi ? "MPI_THREAD_MULTIPLE" : "MPI_THREAD_FUNNELED"));
    return j.world;
#else
    (void)threads_use_mpi;
    throw AgreedError(fmt::format(
        "MPI is not available: this sinklab was built without it, so the {} processes the launcher started would "
        "each run alone; install OpenMPI (scripts/setup.sh installs libopenmpi-dev) and build again",
        launch.size > 1 ? fmt::format("{}", launch.size) : std::string("several")));
#endif
}

const Communicator& job() { return the_job().world; }

int job_local_ranks() { return the_job().local_ranks; }

int default_threads_per_rank() {
    if (!job().distributed()) return 0;
    cpu_set_t allowed;
    CPU_ZERO(&allowed);
    const long online = ::sysconf(_SC_NPROCESSORS_ONLN);
    const int usable = ::sched_getaffinity(0, sizeof allowed, &allowed) == 0 ? CPU_COUNT(&allowed) : static_cast<int>(online);
    const int node_share = std::max(1, static_cast<int>(online) / std::max(1, job_local_ranks()));
    return std::max(1, std::min(usable, node_share));
}

void end_job() {
#ifdef SINKLAB_WITH_MPI
    Job& j = the_job();
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (j.mpi && !finalized) MPI_Finalize();
#endif
}

void abort_job(int exit_code) {
#ifdef SINKLAB_WITH_MPI
    if (the_job().mpi) MPI_Abort(MPI_COMM_WORLD, exit_code);
#endif
    std::_Exit(exit_code);
}

// ---------------------------------------------------------------------------------------------
// Bucketed averaging.

#ifdef SINKLAB_WITH_MPI
struct BucketedAverage::Requests {
    std::vector<MPI_Request> pending;
};
#else
struct BucketedAverage::Requests {};
#endif

BucketedAverage::BucketedAverage(Communicator ranks, size_t bucket_bytes)
    : ranks_(std::move(ranks)), bucket_elements_(bucket_bytes / sizeof(float)), requests_(std::make_unique<Requests>()) {}

BucketedAverage::~BucketedAverage() = default;

void BucketedAverage::begin(float* data, size_t n) {
    data_ = data;
    n_ = n;
    pending_first_ = pending_last_ = n;
}

void BucketedAverage::ready(size_t first, size_t last) {
    SINKLAB_ASSERT(first <= last && last == pending_first_);
    pending_first_ = first;
    if (!ranks_.distributed() || bucket_elements_ == 0) return;
    if (pending_last_ - pending_first_ >= bucket_elements_) {
        start_bucket(pending_first_, pending_last_);
        pending_last_ = pending_first_;
    }
    advance();
}

#ifdef SINKLAB_WITH_MPI

void BucketedAverage::start_bucket(size_t first, size_t last) {
    const double t0 = now_seconds();
    for (size_t begin = first; begin < last; begin += kMaxCount) {
        requests_->pending.emplace_back();
        MPI_Iallreduce(MPI_IN_PLACE, data_ + begin, static_cast<int>(std::min(kMaxCount, last - begin)), MPI_FLOAT,
                       MPI_SUM, comm_of(ranks_), &requests_->pending.back());
    }
    bytes_ += static_cast<double>(last - first) * sizeof(float);
    seconds_ += now_seconds() - t0;
}

void BucketedAverage::advance() {
    // MPI moves a non-blocking reduction on only inside MPI calls (no progress thread by default):
    // each part that backward finishes gives the buckets in flight a turn.
    if (requests_->pending.empty()) return;
    const double t0 = now_seconds();
    int done = 0;
    MPI_Testall(static_cast<int>(requests_->pending.size()), requests_->pending.data(), &done, MPI_STATUSES_IGNORE);
    if (done) requests_->pending.clear();
    seconds_ += now_seconds() - t0;
}

void BucketedAverage::finish() {
    SINKLAB_ASSERT(pending_first_ == 0);
    if (!ranks_.distributed()) return;
    const double t0 = now_seconds();
    if (bucket_elements_ == 0) {
        ranks_.allreduce_sum(data_, n_);
        bytes_ += static_cast<double>(n_) * sizeof(float);
    } else {
        if (pending_last_ > 0) start_bucket(0, pending_last_);
        MPI_Waitall(static_cast<int>(requests_->pending.size()), requests_->pending.data(), MPI_STATUSES_IGNORE);
        requests_->pending.clear();
    }
    seconds_ += now_seconds() - t0;
    const float inverse = 1.0f / static_cast<float>(ranks_.size());
    float* data = data_;
    const long n = static_cast<long>(n_);
    #pragma omp parallel for simd schedule(static)
    for (long i = 0; i < n; ++i) data[i] *= inverse;
}

#else

void BucketedAverage::start_bucket(size_t, size_t) {}
void BucketedAverage::advance() {}
void BucketedAverage::finish() { SINKLAB_ASSERT(pending_first_ == 0); }

#endif

}  // namespace sinklab
