import type { Banners as State } from "./useBanners";

export function Banners({ banners }: { banners: State }) {
  const { error, notice, dismissError, dismissNotice } = banners;
  return (
    <>
      {error && (
        <div className="banner error" role="alert">
          <span>{error}</span>
          <button onClick={dismissError} aria-label="Dismiss">
            ×
          </button>
        </div>
      )}
      {notice && (
        <div className="banner success" role="status">
          <span>{notice}</span>
          <button onClick={dismissNotice} aria-label="Dismiss">
            ×
          </button>
        </div>
      )}
    </>
  );
}
