<?php
/**
 * Stand-ins for the plugin's edges, and a base test case that wires them.
 *
 * @package Closte_Operator
 */

use PHPUnit\Framework\TestCase;

/**
 * Records every request and answers from a script (a callable), or 200 `{}`.
 */
final class Fake_Transport implements Closte_Operator_Transport {

	/**
	 * Requests seen: method, url, headers, body, timeout.
	 *
	 * @var array<int, array>
	 */
	public array $requests = array();

	/**
	 * Answers a request array with a Closte_Operator_Result.
	 *
	 * @var Closure|null
	 */
	public ?Closure $answer = null;

	public function request( string $method, string $url, array $headers, ?string $body, float $timeout ): Closte_Operator_Result {
		$request          = compact( 'method', 'url', 'headers', 'body', 'timeout' );
		$this->requests[] = $request;
		return null === $this->answer ? new Closte_Operator_Result( 200, '{}' ) : ( $this->answer )( $request );
	}

	/**
	 * Every later request gets this answer.
	 *
	 * @param int    $status HTTP status (0: unreachable).
	 * @param string $body   Body.
	 * @return void
	 */
	public function always( int $status, string $body = '{}' ): void {
		$this->answer = fn() => 0 === $status ? Closte_Operator_Result::unreachable( 'cURL error 7: Failed to connect' ) : new Closte_Operator_Result( $status, $body );
	}

	/**
	 * "METHOD path" of each request, the sidecar's base URL removed.
	 *
	 * @return array<int, string>
	 */
	public function lines(): array {
		return array_map( fn( $r ) => $r['method'] . ' ' . substr( $r['url'], strlen( Closte_Operator_Test_Case::SIDECAR ) ), $this->requests );
	}
}

/**
 * Options in an array.
 */
final class Memory_Store implements Closte_Operator_Store {

	public array $values = array();

	public function get( string $key, mixed $fallback = null ): mixed {
		return array_key_exists( $key, $this->values ) ? $this->values[ $key ] : $fallback;
	}

	public function set( string $key, mixed $value ): void {
		if ( null === $value ) {
			unset( $this->values[ $key ] );
			return;
		}
		$this->values[ $key ] = $value;
	}
}

/**
 * The queue's rows in an array, with a log of every row written: what a
 * write costs is what the log shows.
 */
final class Memory_Queue_Store implements Closte_Operator_Queue_Store {

	/**
	 * Waiting entries by key, each with its version.
	 *
	 * @var array<string, array>
	 */
	public array $rows = array();

	/**
	 * Rejected records, newest first.
	 *
	 * @var array<int, array>
	 */
	public array $rejected_rows = array();

	/**
	 * One line per row written: "put KEY BYTES", "replace KEY BYTES", "remove KEY", "reject BYTES".
	 *
	 * @var array<int, string>
	 */
	public array $writes = array();

	private int $versions = 0;

	public function waiting(): array {
		return $this->rows;
	}

	public function count(): int {
		return count( $this->rows );
	}

	public function put( string $key, array $entry ): void {
		unset( $entry['version'] );
		$this->writes[]     = 'put ' . $key . ' ' . strlen( json_encode( $entry ) );
		$this->rows[ $key ] = $entry + array( 'version' => ++$this->versions );
	}

	public function replace( string $key, int $version, array $entry ): bool {
		if ( ! isset( $this->rows[ $key ] ) || $this->rows[ $key ]['version'] !== $version ) {
			return false;
		}
		unset( $entry['version'] );
		$this->writes[]     = 'replace ' . $key . ' ' . strlen( json_encode( $entry ) );
		$this->rows[ $key ] = $entry + array( 'version' => ++$this->versions );
		return true;
	}

	public function remove( string $key, ?int $version = null ): bool {
		if ( ! isset( $this->rows[ $key ] ) || ( null !== $version && $this->rows[ $key ]['version'] !== $version ) ) {
			return false;
		}
		$this->writes[] = 'remove ' . $key;
		unset( $this->rows[ $key ] );
		return true;
	}

	public function reject( array $record, int $keep ): void {
		$this->writes[] = 'reject ' . strlen( json_encode( $record ) );
		array_unshift( $this->rejected_rows, $record );
		$this->rejected_rows = array_slice( $this->rejected_rows, 0, $keep );
	}

	public function rejected(): array {
		return $this->rejected_rows;
	}

	public function clear_rejected(): int {
		$count               = count( $this->rejected_rows );
		$this->rejected_rows = array();
		return $count;
	}
}

/**
 * The plugin's parts over the fakes, with a clock the test moves.
 */
abstract class Closte_Operator_Test_Case extends TestCase {

	const TOKEN   = 'sidecar-token-5f2a';
	const SIDECAR = 'http://127.0.0.1:8087';

	/** CLOSTE_CLIENT_API_KEY: the WordPress-side placeholder. */
	const PLACEHOLDER = 'closte-client-placeholder-77e1';

	protected Fake_Transport $transport;
	protected Memory_Store $store;
	protected Memory_Queue_Store $rows;
	protected Closte_Operator_Sidecar $sidecar;
	protected Closte_Operator_Queue $queue;
	protected int $now = 1700000000;

	/**
	 * Due times reported by the queue's change callback.
	 *
	 * @var array<int, int>
	 */
	protected array $scheduled = array();

	protected function setUp(): void {
		$this->transport = new Fake_Transport();
		$this->store     = new Memory_Store();
		$this->rows      = new Memory_Queue_Store();
		$this->sidecar   = new Closte_Operator_Sidecar( $this->transport, new Closte_Operator_Config( self::SIDECAR, self::TOKEN, 2.0, '', self::PLACEHOLDER ) );
		$this->queue     = new Closte_Operator_Queue(
			$this->sidecar,
			$this->store,
			$this->rows,
			fn() => $this->now,
			function ( int $next ) {
				$this->scheduled[] = $next;
			}
		);
	}

	/**
	 * The queue as key => [op, attempts, next - now].
	 *
	 * @return array<string, array>
	 */
	protected function queued(): array {
		return array_map(
			fn( $e ) => array( $e['op'], $e['attempts'], $e['next'] - $this->now ),
			$this->queue->entries()
		);
	}
}
