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
		return array_map( fn( $r ) => $r['method'] . ' ' . substr( $r['url'], strlen( 'http://sidecar.test:8087' ) ), $this->requests );
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
 * The plugin's parts over the fakes, with a clock the test moves.
 */
abstract class Closte_Operator_Test_Case extends TestCase {

	const TOKEN = 'sidecar-token-5f2a';

	protected Fake_Transport $transport;
	protected Memory_Store $store;
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
		$this->sidecar   = new Closte_Operator_Sidecar( $this->transport, new Closte_Operator_Config( 'http://sidecar.test:8087', self::TOKEN, 2.0 ) );
		$this->queue     = new Closte_Operator_Queue(
			$this->sidecar,
			$this->store,
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
